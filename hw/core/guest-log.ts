/**
 * Guest errors: what a device model says when the driver does something a real device would
 * ignore or misbehave on (a write to a read-only register, a bad access size, DMA beyond the
 * device's mask). Models never throw on guest behaviour; they log here and carry on, as QEMU's
 * LOG_GUEST_ERROR does. Tests assert the log is empty for correct drivers.
 */

export type GuestLogKind = "guest-error" | "unimp";

export interface GuestLogEntry {
  readonly timeNs: number;
  readonly device: string;
  readonly kind: GuestLogKind;
  readonly message: string;
}

export class GuestLog {
  readonly entries: GuestLogEntry[] = [];
  constructor(private readonly now: () => number) {}

  error(device: string, message: string): void {
    this.entries.push({ timeNs: this.now(), device, kind: "guest-error", message });
  }

  unimp(device: string, message: string): void {
    this.entries.push({ timeNs: this.now(), device, kind: "unimp", message });
  }

  get errors(): GuestLogEntry[] {
    return this.entries.filter((e) => e.kind === "guest-error");
  }
}

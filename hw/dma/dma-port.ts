/**
 * A device's DMA port: the only way a device model reaches memory.
 *
 * The port drives `addressBits` address lines: a higher address loses its top bits on the bus
 * (logged as a guest error, as 32-bit hardware given a 64-bit address would truncate it). It
 * then goes to the memory system, snooping CPU caches only when the device is coherent. A
 * transaction that hits nothing fails and the model reports the error to its driver; the port
 * never throws on guest behaviour. The IOMMU, when added, sits between `translate` and memory.
 */

import type { GuestLog } from "../core/guest-log.ts";
import type { MemorySystem } from "../cpu/memory-system.ts";
import { decodeLe, encodeLe } from "../cpu/memory-system.ts";

export interface DmaPortOptions {
  name: string;
  coherent: boolean;
  addressBits: number;
}

/** Observes every device access that reached memory (the kernel's sanitizer hooks in here). */
export interface DmaObserver {
  onDeviceAccess(port: DmaPort, addr: number, len: number, isWrite: boolean): void;
}

export class DmaPort {
  readonly name: string;
  coherent: boolean;
  addressBits: number;
  observer: DmaObserver | null = null;
  private readonly scratch = new Uint8Array(8);
  private readonly view = new DataView(this.scratch.buffer);

  constructor(
    private readonly mem: MemorySystem,
    private readonly log: GuestLog,
    opts: DmaPortOptions,
  ) {
    this.name = opts.name;
    this.coherent = opts.coherent;
    this.addressBits = opts.addressBits;
  }

  /** Read `len` bytes at bus address `addr` into `dst[off..]`; false if the transaction failed. */
  read(addr: number, dst: Uint8Array, off: number, len: number): boolean {
    const a = this.drive(addr, len);
    if (!this.mem.deviceRead(a, dst, off, len, this.coherent)) {
      this.log.error(this.name, `DMA read of ${len} bytes at 0x${a.toString(16)} hit no memory (master abort)`);
      return false;
    }
    if (this.observer) this.observer.onDeviceAccess(this, a, len, false);
    return true;
  }

  /** Write `len` bytes from `src[off..]` to bus address `addr`; false if the transaction failed. */
  write(addr: number, src: Uint8Array, off: number, len: number): boolean {
    const a = this.drive(addr, len);
    if (!this.mem.deviceWrite(a, src, off, len, this.coherent)) {
      this.log.error(this.name, `DMA write of ${len} bytes at 0x${a.toString(16)} hit no memory (master abort)`);
      return false;
    }
    if (this.observer) this.observer.onDeviceAccess(this, a, len, true);
    return true;
  }

  /** Little-endian 32-bit read; returns -1 when the transaction failed. */
  readU32(addr: number): number {
    return this.read(addr, this.scratch, 0, 4) ? this.view.getUint32(0, true) : -1;
  }

  /** Little-endian store of 1, 2, 4 or 8 bytes (MSI messages are 4-byte writes). */
  writeLe(addr: number, value: number, size: 1 | 2 | 4 | 8): boolean {
    encodeLe(this.view, size, value);
    return this.write(addr, this.scratch, 0, size);
  }

  readLe(addr: number, size: 1 | 2 | 4 | 8): number {
    return this.read(addr, this.scratch, 0, size) ? decodeLe(this.view, size) : -1;
  }

  /** The address as it appears on the bus after the device's address lines. */
  private drive(addr: number, len: number): number {
    if (this.addressBits >= 53) return addr;
    const limit = 2 ** this.addressBits;
    if (addr + len <= limit) return addr;
    // The top address bits are simply not driven, so the transfer lands (and runs on) modulo
    // the limit; a transfer that straddles the limit wraps back towards 0 on real hardware,
    // which we approximate by moving the whole transfer.
    const truncated = addr % limit;
    this.log.error(this.name, `DMA address 0x${addr.toString(16)} exceeds the device's ${this.addressBits}-bit address lines; bus sees 0x${truncated.toString(16)}`);
    return truncated;
  }
}

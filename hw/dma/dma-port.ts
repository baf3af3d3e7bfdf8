/**
 * A device's DMA port: the only way a device model reaches memory.
 *
 * The port drives `addressBits` address lines: a higher address loses its top bits on the bus
 * (logged as a guest error, as 32-bit hardware given a 64-bit address would truncate it). It
 * then goes to the memory system, snooping CPU caches only when the device is coherent. A
 * transaction that hits nothing fails and the model reports the error to its driver; the port
 * never throws on guest behaviour.
 *
 * With an IOMMU (`translator`), each transfer is split at 4 KiB IOVA boundaries and every chunk
 * is translated with the port's requester id before it reaches memory; an aborted chunk fails
 * the transfer as a master abort would (earlier chunks have already moved, as on real hardware).
 * The IOMMU records the fault itself, so the port logs no guest error for it: whether a fault
 * is a driver's bug or an attack being stopped is for the kernel's report to say. Writes into
 * the interrupt controller's MSI window bypass translation, as VT-d routes them to interrupt
 * remapping instead of DMA remapping (`msiWindow`).
 */

import type { GuestLog } from "../core/guest-log.ts";
import type { MemorySystem } from "../cpu/memory-system.ts";
import { decodeLe, encodeLe } from "../cpu/le.ts";
import type { DmaTranslator } from "../iommu/iommu-types.ts";

/** The IOMMU's translation granule: a transfer is translated one 4 KiB IOVA page at a time. */
const IOVA_PAGE = 4096;

export interface DmaPortOptions {
  name: string;
  coherent: boolean;
  addressBits: number;
}

/**
 * Observes every device access that reached memory (the kernel's sanitizer hooks in here):
 * `addr` is the physical address, `busAddr` the address the device issued (the IOVA behind an
 * IOMMU; equal to `addr` without one). An access split by the IOMMU is seen chunk by chunk.
 */
export interface DmaObserver {
  onDeviceAccess(port: DmaPort, addr: number, len: number, isWrite: boolean, busAddr: number): void;
}

export class DmaPort {
  readonly name: string;
  coherent: boolean;
  addressBits: number;
  observer: DmaObserver | null = null;
  /** Time the device's DMA engine reported spending on transfers (ns), for the report. */
  busyNs = 0;
  /** The IOMMU between this port and memory, or null (no IOMMU: bus address = physical). */
  translator: DmaTranslator | null = null;
  /** Requester id sent with every transaction (PCI `bus << 8 | devfn`, or a stream id). */
  requesterId = 0;
  /** [base, end) of the MSI window: writes there are interrupts, never translated. */
  msiBase = 0;
  msiEnd = 0;
  /** Transfers aborted by the IOMMU (each chunk fault counts once). */
  iommuAborts = 0;
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
    // The bulk cases (an address the lines can drive): straight to memory, or to the IOMMU.
    if (this.addressBits >= 53) return this.translator === null ? this.physAccess(addr, dst, off, len, false, addr) : this.access(addr, dst, off, len, false);
    return this.transfer(addr, dst, off, len, false);
  }

  /** Write `len` bytes from `src[off..]` to bus address `addr`; false if the transaction failed. */
  write(addr: number, src: Uint8Array, off: number, len: number): boolean {
    if (this.addressBits >= 53) return this.access(addr, src, off, len, true);
    return this.transfer(addr, src, off, len, true);
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

  /**
   * The device's address lines drive only the low `addressBits` bits: an address beyond them
   * lands modulo the limit, and a transfer running past the limit wraps around to 0.
   */
  private transfer(addr: number, buf: Uint8Array, off: number, len: number, isWrite: boolean): boolean {
    if (this.addressBits >= 53 || addr + len <= 2 ** this.addressBits) return this.access(addr, buf, off, len, isWrite);
    const limit = 2 ** this.addressBits;
    const a = addr % limit;
    this.log.error(this.name, `DMA address 0x${addr.toString(16)}+${len} exceeds the device's ${this.addressBits}-bit address lines; bus sees 0x${a.toString(16)}`);
    const first = Math.min(len, limit - a);
    if (!this.access(a, buf, off, first, isWrite)) return false;
    return first === len || this.access(0, buf, off + first, len - first, isWrite);
  }

  private access(a: number, buf: Uint8Array, off: number, len: number, isWrite: boolean): boolean {
    const t = this.translator;
    if (t === null || (isWrite && a >= this.msiBase && a + len <= this.msiEnd)) return this.physAccess(a, buf, off, len, isWrite, a);
    // Translate one IOVA page at a time: pages contiguous in IOVA space need not be in RAM.
    let done = 0;
    do {
      const iova = a + done;
      // (no `%`: a double modulo is a slow library call in V8, and IOVAs are often above 2^31)
      const n = Math.min(len - done, IOVA_PAGE - (iova - Math.floor(iova / IOVA_PAGE) * IOVA_PAGE));
      const phys = t.translate(this.requesterId, iova, n, isWrite);
      if (phys < 0) {
        this.iommuAborts++;
        return false;
      }
      if (!this.physAccess(phys, buf, off + done, n, isWrite, iova)) return false;
      done += n;
    } while (done < len);
    return true;
  }

  private physAccess(a: number, buf: Uint8Array, off: number, len: number, isWrite: boolean, busAddr: number): boolean {
    const ok = isWrite ? this.mem.deviceWrite(a, buf, off, len, this.coherent) : this.mem.deviceRead(a, buf, off, len, this.coherent);
    if (!ok) {
      this.log.error(this.name, `DMA ${isWrite ? "write" : "read"} of ${len} bytes at 0x${a.toString(16)} hit no memory (master abort)`);
      return false;
    }
    if (this.observer) this.observer.onDeviceAccess(this, a, len, isWrite, busAddr);
    return true;
  }
}

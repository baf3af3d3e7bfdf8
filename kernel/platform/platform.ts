/**
 * The platform layer: our arch/. The only kernel code that touches the hardware model.
 *
 * It gives the rest of the kernel what a CPU and its firmware give a real kernel: loads and
 * stores through the CPU's caches, MMIO, cache maintenance instructions, the interrupt
 * controller, the RAM layout, the PCI configuration window, the clock and timer events, and
 * the trace recorder. Everything above speaks to hardware only through this class.
 */

import type { Board } from "../../hw/machine/board.ts";
import type { IommuPolicy, MachineDesc } from "../../hw/machine/schema.ts";
import type { IommuFault } from "../../hw/iommu/iommu-types.ts";
import type { MemorySystem } from "../../hw/cpu/memory-system.ts";
import type { MemType, MemoryObserver } from "../../hw/cpu/memory-types.ts";
import { MEM_CACHED, MEM_UNCACHED, MEM_WC } from "../../hw/cpu/memory-types.ts";
import { BusError } from "../../hw/mem/phys-map.ts";
import type { ScheduledEvent } from "../../hw/core/scheduler.ts";
import type { Trace, TraceTrack } from "../../hw/core/trace.ts";
import { TRACE_PID_CPU, TRACE_PID_DEVICE, TRACE_PID_MEMORY } from "../../hw/core/trace.ts";
import type { GuestLogEntry } from "../../hw/core/guest-log.ts";
import type { DmaObserver, DmaPort } from "../../hw/dma/dma-port.ts";

export { MEM_CACHED, MEM_UNCACHED, MEM_WC, BusError, TRACE_PID_CPU, TRACE_PID_DEVICE, TRACE_PID_MEMORY };
export type { MemType, ScheduledEvent, Trace, TraceTrack, GuestLogEntry, MachineDesc, DmaObserver };
export type { DmaPort, MemoryObserver };

/** Which device a DMA port belongs to: a PCI function (by slot) or a platform device (by name). */
export type DmaPortOwner = { readonly bus: "pci"; readonly slot: number } | { readonly bus: "platform"; readonly name: string };
export type AccessSize = 1 | 2 | 4 | 8;

export interface RamInfo {
  readonly base: number;
  readonly size: number;
  readonly node: number;
}

/** What the kernel knows about a PCI function at boot (from firmware tables). */
export interface PciFirmwareInfo {
  readonly slot: number;
  readonly irq: number;
}

/** A device in the IOMMU's scope: how the kernel finds the requester id of its DMA. */
export type IommuScopeEntry =
  | { readonly bus: "pci"; readonly slot: number; readonly requesterId: number; readonly untrusted: boolean }
  | { readonly bus: "platform"; readonly name: string; readonly requesterId: number; readonly untrusted: boolean };

/** The IOMMU as firmware describes it (ACPI DMAR / IORT): registers, interrupt, device scope. */
export interface IommuFirmwareInfo {
  readonly base: number;
  readonly irq: number;
  /** The kernel's policy for DMA domains (machine description; Linux: command line). */
  readonly policy: IommuPolicy;
  readonly devices: readonly IommuScopeEntry[];
}

/** One transaction the IOMMU aborted, as only the simulator sees it (recorded or dropped). */
export type { IommuFault } from "../../hw/iommu/iommu-types.ts";

export class Platform {
  readonly desc: MachineDesc;
  readonly cpus: number;
  readonly coherentDma: boolean;
  readonly trace: Trace;
  /** board.mem, one load closer on the per-segment maintenance path. */
  private readonly mem: MemorySystem;

  constructor(private readonly board: Board) {
    this.mem = board.mem;
    this.desc = board.desc;
    this.cpus = board.desc.cpus.count;
    this.coherentDma = board.desc.dma.coherent;
    this.trace = board.trace;
    // The bus arbiter compares a CPU's access with DMA tenures on the CPU's own clock.
    board.interconnect.cpuClock = () => this.cpuClock();
  }

  // ------------------------------------------------------------ time and events
  now(): number {
    return this.board.scheduler.now;
  }

  after(ns: number, name: string, cb: () => void): ScheduledEvent {
    return this.board.scheduler.after(ns, name, cb);
  }

  at(ns: number, name: string, cb: () => void): ScheduledEvent {
    return this.board.scheduler.at(ns, name, cb);
  }

  cancel(ev: ScheduledEvent | null | undefined): void {
    this.board.scheduler.cancel(ev);
  }

  /** Run the next event; false when none is left. */
  step(): boolean {
    return this.board.scheduler.step();
  }

  peekTime(): number {
    return this.board.scheduler.peekTime();
  }

  /** A named random stream derived from the machine seed. */
  random(label: string): { nextU32(): number; nextFloat(): number; chance(p: number): boolean } {
    return this.board.prng.fork(label);
  }

  // ------------------------------------------------------------ CPU memory accesses
  charged(cpu: number): number {
    return this.board.mem.charged[cpu];
  }

  /** Charge `ns` of CPU time to `cpu` (busy-waits such as udelay). */
  chargeCpu(cpu: number, ns: number): void {
    this.board.mem.charged[cpu] += ns;
  }

  read(cpu: number, phys: number, dst: Uint8Array, off: number, len: number, type: MemType): void {
    this.board.mem.cpuRead(cpu, phys, dst, off, len, type);
  }

  write(cpu: number, phys: number, src: Uint8Array, off: number, len: number, type: MemType): void {
    this.board.mem.cpuWrite(cpu, phys, src, off, len, type);
  }

  fill(cpu: number, phys: number, value: number, len: number, type: MemType): void {
    this.board.mem.cpuFill(cpu, phys, value, len, type);
  }

  load(cpu: number, phys: number, size: AccessSize, type: MemType): number {
    return this.board.mem.cpuLoad(cpu, phys, size, type);
  }

  store(cpu: number, phys: number, value: number, size: AccessSize, type: MemType): void {
    this.board.mem.cpuStore(cpu, phys, value, size, type);
  }

  /** The running CPU's own time (event time plus what its code charged); set by the kernel. */
  cpuClock: () => number = () => this.board.scheduler.now;

  /** A device sees a register access at the CPU's time, not at the start of the event. */
  mmioRead(cpu: number, phys: number, size: AccessSize): number {
    const s = this.board.scheduler;
    const saved = s.enterTime(this.cpuClock());
    try {
      return this.board.mem.mmioRead(cpu, phys, size);
    } finally {
      s.leaveTime(saved);
    }
  }

  mmioWrite(cpu: number, phys: number, value: number, size: AccessSize): void {
    const s = this.board.scheduler;
    const saved = s.enterTime(this.cpuClock());
    try {
      this.board.mem.mmioWrite(cpu, phys, value, size);
    } finally {
      s.leaveTime(saved);
    }
  }

  /** A store barrier: drains write-combining buffers (wmb / dma_wmb). */
  barrier(cpu: number): void {
    this.board.mem.wcDrain(cpu);
  }

  // ------------------------------------------------------------ cache maintenance (to PoC)
  // Each returns the cache lines the range covers (what the maintenance loop walked).
  cacheClean(cpu: number, phys: number, len: number): number {
    return this.mem.cacheClean(cpu, phys, len);
  }

  cacheInvalidate(cpu: number, phys: number, len: number): number {
    return this.mem.cacheInvalidate(cpu, phys, len);
  }

  cacheFlush(cpu: number, phys: number, len: number): number {
    return this.mem.cacheFlush(cpu, phys, len);
  }

  lineSize(): number {
    return 64;
  }

  // ------------------------------------------------------------ RAM layout
  ram(): RamInfo[] {
    return this.board.map.ramRanges.map((r) => ({ base: r.base, size: r.size, node: r.node }));
  }

  isRam(phys: number, len: number): boolean {
    return this.board.map.isRam(phys, len);
  }

  // ------------------------------------------------------------ interrupt controller
  get irqLines(): number {
    return this.board.intc.lines;
  }

  get msiFirst(): number {
    return this.board.intc.msiFirst;
  }

  get irqVectors(): number {
    return this.board.intc.vectors;
  }

  get msiAddress(): number {
    return this.board.intc.msiRegion.base;
  }

  irqConfigure(v: number, trigger: "edge" | "level"): void {
    this.board.intc.configure(v, trigger);
  }

  irqMask(v: number): void {
    this.board.intc.mask(v);
  }

  irqUnmask(v: number): void {
    this.board.intc.unmask(v);
  }

  irqSetAffinity(v: number, cpu: number): void {
    this.board.intc.setAffinity(v, cpu);
  }

  irqHighestPending(cpu: number): number {
    return this.board.intc.highestPending(cpu);
  }

  irqAck(v: number): void {
    this.board.intc.ack(v);
  }

  irqEoi(v: number): void {
    this.board.intc.eoi(v);
  }

  onIrqDeliverable(cb: (cpu: number) => void): void {
    this.board.intc.onDeliverable = cb;
  }

  // ------------------------------------------------------------ buses and devices
  get pciEcamBase(): number {
    return this.board.pci.ecam.base;
  }

  pciFirmware(): PciFirmwareInfo[] {
    return this.board.pciDevices.map((d) => ({ slot: d.slot, irq: d.irq }));
  }

  /** The IOMMU's firmware table, or null when the machine has none. */
  iommuFirmware(): IommuFirmwareInfo | null {
    const io = this.board.desc.iommu;
    if (!io || !this.board.iommu) return null;
    const devices: IommuScopeEntry[] = [
      ...this.board.pciDevices.map((d) => ({ bus: "pci" as const, slot: d.slot, requesterId: d.requesterId, untrusted: d.untrusted })),
      ...this.board.platformDevices.map((d) => ({ bus: "platform" as const, name: d.name, requesterId: d.requesterId, untrusted: d.untrusted })),
    ];
    return { base: io.base, irq: io.irq, policy: io.policy, devices };
  }

  /**
   * Checker view: every fault the IOMMU raises, including those its full fault log dropped
   * (the kernel driver sees only recorded ones). Null removes the observer.
   */
  observeIommuFaults(cb: ((f: IommuFault) => void) | null): void {
    if (this.board.iommu) this.board.iommu.onFault = cb;
  }

  /** The IOMMU's counters (translations, IOTLB hits and misses, walks, faults), or null. */
  iommuStats(): Record<string, number> | null {
    return this.board.iommu ? { ...this.board.iommu.stats } : null;
  }

  /** Install the sanitizer's view of device accesses on every DMA port. */
  observeDma(observer: DmaObserver | null): void {
    for (const d of this.board.pciDevices) d.device.dma.observer = observer;
    for (const d of this.board.platformDevices) d.device.dma.observer = observer;
  }

  /** The device behind a DMA port (for naming the culprit of an access), or null. */
  dmaPortOwner(port: DmaPort): DmaPortOwner | null {
    for (const d of this.board.pciDevices) if (d.device.dma === port) return { bus: "pci", slot: d.slot };
    for (const d of this.board.platformDevices) if (d.device.dma === port) return { bus: "platform", name: d.name };
    return null;
  }

  // ------------------------------------------------------------ checker views (coherence sanitizer)
  // Side-effect free: nothing is charged, counted, filled or evicted.

  /** Install the sanitizer's view of dirty-line write-backs (null: off). */
  observeMemory(observer: MemoryObserver | null): void {
    this.board.mem.observer = observer;
  }

  /** What RAM holds at [phys, phys+len), bypassing every cache. */
  peekRam(phys: number, dst: Uint8Array, off: number, len: number): void {
    this.board.mem.peekRam(phys, dst, off, len);
  }

  /** What a cached load by `cpu` would return now (`cpu` -1: the newest cached copy). */
  peekCached(cpu: number, phys: number, dst: Uint8Array, off: number, len: number): void {
    this.board.mem.peekCached(cpu, phys, dst, off, len);
  }

  /** Does some cache level hold the line of `phys`? */
  lineCached(phys: number): boolean {
    return this.board.mem.isCached(phys);
  }

  /** Is the line of `phys` dirty in some cache level? */
  lineDirty(phys: number): boolean {
    return this.board.mem.isDirty(phys);
  }

  /** Is any line dirty anywhere? */
  anyDirtyLines(): boolean {
    return this.board.mem.hasDirtyLines();
  }

  guestLog(): readonly GuestLogEntry[] {
    return this.board.log.entries;
  }

  /** Memory-system counters for the report. */
  memStats(): Record<string, number> {
    return { ...this.board.mem.stats };
  }

  /** Events the scheduler has run so far. */
  eventsExecuted(): number {
    return this.board.scheduler.executed;
  }

  residentRamBytes(): number {
    return this.board.residentRamBytes;
  }
}

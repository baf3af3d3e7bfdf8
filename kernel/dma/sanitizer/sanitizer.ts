/**
 * The coherence sanitizer: what only a simulator can see (DESIGN.md, Findings).
 *
 * Theory of operation
 * - Causes (§1.2, §4.5). Every byte of a live streaming mapping has an owner, kept by
 *   dma-debug: the device after map / sync_for_device, the CPU after sync_for_cpu, range by
 *   range when a sync names part of the mapping (debug-owner.ts). Every CPU access
 *   to kernel memory (kernel/mm/access.ts) is checked against the mappings covering its physical
 *   bytes (phys-index.ts): touching bytes the device owns is `cpu-access-device-owned`, and so is
 *   a store into a cache-line granule a device-written buffer shares (the §5.4 hazard). Every
 *   device access (the DMA ports) is checked by bus address against the device's own mappings
 *   and allocations: a CPU-owned mapping is `device-access-cpu-owned`, RAM nothing covers is
 *   `device-access-unmapped`. Coherent allocations have no owner and are never a cause.
 *   The documented RX recycle (Documentation/core-api/dma-api-howto.rst: the device gets back,
 *   without sync_for_device, a buffer the CPU only read since sync_for_cpu) is not a finding;
 *   the device then owns the bytes it took until a sync_for_cpu or the unmap.
 * - Effects, at the moment they happen, on non-coherent ports only (a snooping device cannot
 *   produce them). The shadow (shadow.ts) remembers the bytes a device wrote while a cache held
 *   their line. The memory system reports, line by line as they happen, each cached load
 *   (onCpuLoad), store (onCpuStore), write-back (onWriteBack) and line leaving every cache
 *   (onLineGone): a load returning other bytes than RAM's there is `stale-cpu-read`, a write-back
 *   that would change them is `lost-device-write`, and a device read of bytes a dirty line holds
 *   differently is `stale-device-read`. All compare bytes, so none fires unless data really was
 *   stale or lost. Line by line matters: a later line's miss may evict an earlier line of the
 *   same copy, so checking after the whole access would come too late.
 * - findings.ts makes one finding per (kind, mapping, access, episode).
 * - DMA-layer code that touches buffers on purpose (swiotlb bounce copies) runs inside
 *   dma_sanitizer_internal() (index.ts), which pauses the CPU ownership checks.
 * Hot paths: one size test each while nothing is mapped and no line is shadowed.
 */

import type { Kernel } from "../../core/kernel.ts";
import type { DmaObserver, DmaPort } from "../../platform/platform.ts";
import type { CpuAccessObserver } from "../../mm/access.ts";
import type { device } from "../../include/device.ts";
import type { vaddr_t } from "../../include/types.ts";
import { driver_core } from "../../base/core.ts";
import { pci_slot_name } from "../../pci/pci-dev.ts";
import { DMA_BIDIRECTIONAL, DMA_FROM_DEVICE, DMA_TO_DEVICE } from "../defs.ts";
import { DmaDebugEntry, dma_debug_history_length, type dma_debug_entry } from "../debug-entry.ts";
import type { DmaDebugTable, dma_debug_listener } from "../debug-table.ts";
import { runDisjoint, type DmaDebugRun } from "../debug-run.ts";
import { dma_debug_hand_over, dma_debug_owned_part, type dma_owned_extent } from "../debug-owner.ts";
import { dma_history_hands_to_device } from "../debug-history.ts";
import { dma_state } from "../state.ts";
import { PhysIndex, SAN_LAZY as SAN_LAZY_IMPORTED, type san_record } from "./phys-index.ts";
import type { Shadow } from "./shadow.ts";
import { SanFindings } from "./findings.ts";
import { SanEffects } from "./effects.ts";
import { SanGraves } from "./graves.ts";
import { san_cpu_pieces_of } from "./cpu-pieces.ts";
import { iommu_stale_check_access, STALE_ACCESS_UNMANAGED } from "../../iommu/stale-check.ts";

// Copied into a module constant once: V8 does not fold an imported binding into a constant,
// and onRemove asks per sg segment.
const SAN_LAZY = SAN_LAZY_IMPORTED;

export class DmaSanitizer implements CpuAccessObserver, DmaObserver, dma_debug_listener {
  /** Depth of DMA-layer work that touches buffers on purpose: CPU ownership checks pause. */
  internal = 0;
  readonly index = new PhysIndex((e) => this.record(e, e.phys, e.size, 0, null));
  /** The effects (stale and lost bytes); the memory system reports to it directly. */
  readonly effects: SanEffects;
  /** What devices wrote under cached lines (effects.shadow). */
  readonly shadow: Shadow;
  /** Counters (reports, benchmarks). */
  readonly stats = { cpu_accesses: 0, device_accesses: 0 };
  /** Where findings are made, deduplicated and printed. */
  readonly report: SanFindings;
  /** Entries removed lately, per device: what a device access after an unmap used. */
  private readonly graves = new SanGraves();
  /** Kernel device behind each port seen (null: none the kernel knows; devices are enumerated at boot). */
  private readonly ports = new Map<DmaPort, device | null>();
  private lastPort: DmaPort | null = null;
  private lastPortDev: device | null = null;
  /** The cache-line granule a device-written buffer must not share: max(line, ARCH_DMA_MINALIGN). */
  private readonly granule: number;

  /** dma-debug's table (the mappings every device access is checked against). */
  private readonly table: DmaDebugTable;

  constructor(readonly k: Kernel) {
    this.table = dma_state(k).table;
    this.granule = Math.max(k.platform.lineSize(), k.dmaMinAlign);
    this.report = new SanFindings(k, this.granule);
    this.effects = new SanEffects(k, this.report, () => this.hitEntry());
    this.shadow = this.effects.shadow;
  }

  // ---------------------------------------------------------------- dma-debug table listener

  onAdd(e: dma_debug_entry): void {
    if (e.type === "coherent") return;
    const pieces = san_cpu_pieces_of(e);
    if (pieces === null || pieces.length === 0) {
      // A record the entry alone determines (no granule to widen within a slab object) is made
      // only if a CPU access or a device access needs it: most sg segments never do.
      const g = this.granule;
      if (e.direction === DMA_TO_DEVICE || e.size === 0 || (e.phys % g === 0 && e.size % g === 0)) {
        this.index.addLazy(e);
        return;
      }
      const r = this.record(e, e.phys, e.size, 0, null);
      e.san_rec = r;
      this.index.add(r);
      return;
    }
    const main = this.record(e, pieces[0].phys, pieces[0].size, pieces[0].off, null);
    e.san_rec = main;
    this.index.add(main);
    const more: san_record[] = [];
    for (let i = 1; i < pieces.length; i++) {
      const r = this.record(e, pieces[i].phys, pieces[i].size, pieces[i].off, main);
      more.push(r);
      this.index.add(r);
    }
    main.more = more;
  }

  /** The record of @e (its first one), if the sanitizer indexed it. */
  private recOf(e: dma_debug_entry): san_record | undefined {
    const s = e.san_rec;
    if (s === SAN_LAZY) return this.index.materialize(e);
    const r = s as san_record | null | undefined;
    return r === null || r === undefined ? undefined : r;
  }

  /** The record of CPU bytes [plo, plo + psize) of @e, at mapping offset @poff. */
  private record(e: dma_debug_entry, plo: number, psize: number, poff: number, main: san_record | null): san_record {
    let lo = plo;
    let hi = plo + psize;
    if (e.direction !== DMA_TO_DEVICE && psize > 0) {
      // A device-written buffer also owns the rest of its granules, within its allocation.
      const g = this.granule;
      const glo = Math.floor(lo / g) * g;
      const ghi = Math.ceil(hi / g) * g;
      if (glo !== lo || ghi !== hi) {
        const obj = this.k.slab.objectAt(plo);
        lo = obj ? Math.max(glo, obj.phys) : glo;
        hi = obj ? Math.min(ghi, obj.phys + obj.slotSize) : ghi;
      }
    }
    return { e, lo, hi, plo, psize, poff, main, more: null, state: 0, cpuWriteAt: -1 };
  }

  onRemove(e: dma_debug_entry): void {
    this.forgetRecords(e);
    this.graves.bury(e);
    if (this.shadow.size !== 0) this.effects.pruneShadowOf(e);
  }

  /**
   * An sg run the table never settled was unmapped whole (DmaDebugTable.removeRun): what
   * onRemove of each segment's entry would do, without the entries. The sanitizer never heard
   * of them, so it holds no records of them and no shadow line names them; the graves keep the
   * run and segment indexes (graves.ts).
   */
  onRemoveRun(run: DmaDebugRun): void {
    this.graves.buryRun(run);
    for (let i = 0; i < run.n && this.shadow.size !== 0; i++) this.effects.pruneShadow(run.addr[i], run.size[i]);
  }

  /** onRemove: drop @e's records from the index. */
  private forgetRecords(e: dma_debug_entry): void {
    if (e.san_rec === SAN_LAZY) this.index.removeLazy(e);
    const r = this.recOf(e);
    if (r !== undefined) {
      this.index.remove(r);
      e.san_rec = null;
      const more = r.more;
      if (more !== null) for (const m of more) this.index.remove(m);
    }
  }

  // ---------------------------------------------------------------- CPU side

  onCpuAccess(_va: vaddr_t, phys: number, len: number, isWrite: boolean, _data: Uint8Array | null, _off: number): void {
    // sg runs not told to the listeners yet (DmaDebugTable.addRun): the index needs them now
    if (this.table.pending !== 0) this.table.settleAll();
    if (this.index.count !== 0 && this.internal === 0) this.cpuOwnership(phys, len, isWrite);
    // The effects were checked line by line as the access went (onCpuLoad, onCpuStore); the
    // stale bytes of the whole access are reported now, after its cause.
    this.effects.cpuAccessDone();
  }

  private cpuOwnership(phys: number, len: number, isWrite: boolean): void {
    this.stats.cpu_accesses++;
    const n = this.index.query(phys, phys + len);
    for (let i = 0; i < n; i++) {
      const r = this.index.hits[i];
      const e = r.e;
      const m = r.main ?? r;
      const a = Math.max(phys, r.plo);
      const b = Math.min(phys + len, r.plo + r.psize);
      if (e.cpu_owned) {
        this.splitCpuAccess(r, m, phys, len, isWrite);
        continue;
      }
      const deviceOwns = e.domain === "DEVICE";
      if (a < b) {
        if (deviceOwns) this.report.cpuAccess(e, a - r.plo + r.poff, b - r.plo + r.poff, isWrite);
        else if (isWrite) m.cpuWriteAt = dma_debug_history_length(e);
      } else if (isWrite) {
        // next to the buffer, in a granule it spans: a line the device's bytes share
        if (deviceOwns) this.report.sharedLine(e, phys, len);
        else m.cpuWriteAt = dma_debug_history_length(e); // dirty until maintenance: no recycle
      }
    }
  }


  /** Scratch of the split-ownership checks. */
  private readonly owned: dma_owned_extent = { lo: 0, hi: 0 };

  /**
   * cpuOwnership of one record whose mapping a partial sync split (debug-owner.ts): touching
   * the device's bytes is the cause, and so is a store into the CPU's bytes (or next to the
   * buffer) in a cache-line granule whose other bytes the device still owns and may write.
   */
  private splitCpuAccess(r: san_record, m: san_record, phys: number, len: number, isWrite: boolean): void {
    const e = r.e;
    const x = this.owned;
    const a = Math.max(phys, r.plo);
    const b = Math.min(phys + len, r.plo + r.psize);
    if (a < b) {
      if (dma_debug_owned_part(e, a - r.plo + r.poff, b - r.plo + r.poff, false, x)) {
        this.report.cpuAccess(e, x.lo, x.hi, isWrite);
        return;
      }
      if (isWrite) m.cpuWriteAt = dma_debug_history_length(e);
    }
    if (!isWrite || e.direction === DMA_TO_DEVICE) return;
    const g = this.granule;
    const glo = Math.max(Math.floor(phys / g) * g, r.plo);
    const ghi = Math.min(Math.ceil((phys + len) / g) * g, r.plo + r.psize);
    if (glo < ghi && dma_debug_owned_part(e, glo - r.plo + r.poff, ghi - r.plo + r.poff, false, x)) this.report.sharedLine(e, phys, len, a < b);
    else if (a >= b) m.cpuWriteAt = dma_debug_history_length(e); // next to the buffer: dirty until maintenance
  }

  // ---------------------------------------------------------------- device side

  onDeviceAccess(port: DmaPort, addr: number, len: number, isWrite: boolean, busAddr: number = addr): void {
    if (!this.k.platform.isRam(addr, len)) return; // MSI doorbells, peer MMIO: not memory
    // a device's accesses come in runs (an sg list, a descriptor ring): remember the last port
    let dev: device | null | undefined;
    if (port === this.lastPort) dev = this.lastPortDev;
    else {
      dev = this.ports.get(port);
      if (dev === undefined) dev = this.resolvePort(port);
      this.lastPort = port;
      this.lastPortDev = dev;
    }
    // Behind an IOMMU: did the access use a translation the kernel no longer has? (kernel/iommu/stale-check.ts)
    // A domain its driver manages (iommu_map) holds no DMA API mappings: judge only the effects.
    if (port.translator !== null && dev !== null && (iommu_stale_check_access(this.k, dev, addr, len, isWrite, busAddr) & STALE_ACCESS_UNMANAGED) !== 0) dev = null;
    this.deviceAccess(dev, port.name, port.coherent, addr, len, isWrite, busAddr);
  }

  /** Name the kernel device behind a port, once. */
  private resolvePort(port: DmaPort): device | null {
    const owner = this.k.platform.dmaPortOwner(port);
    const name = owner === null ? null : owner.bus === "pci" ? pci_slot_name(0, owner.slot << 3) : owner.name;
    const dev = driver_core(this.k).devices.find((d) => d.dev.name === name && d.dev.bus === owner?.bus)?.dev ?? null;
    this.ports.set(port, dev);
    return dev;
  }

  /** Tell the sanitizer which kernel device a port belongs to (tests, models the platform cannot name). */
  attachPort(port: DmaPort, dev: device): void {
    this.ports.set(port, dev);
    this.lastPort = null;
    port.observer = this;
  }

  /**
   * A device accessed RAM at physical address [addr, addr+len) (after the access), issuing bus
   * address `busAddr` (an IOVA behind an IOMMU). Ownership is a question about the device's
   * mappings, which dma-debug keys by bus address; the effects (stale bytes) happen in RAM.
   * `dev` null: the kernel cannot name it, so only the effects are checked.
   */
  deviceAccess(dev: device | null, name: string, coherent: boolean, addr: number, len: number, isWrite: boolean, busAddr: number = addr): void {
    this.stats.device_accesses++;
    this.effects.deviceSeq++;
    this.runHit = false;
    const e = dev !== null ? this.deviceOwnership(dev, busAddr, len, isWrite) : null;
    if (coherent) return;
    // Inside a segment of an unsettled run (runHit), the segment's entry is made only if a
    // shadow line or a report needs it (hitEntry).
    const inMapping = e !== null || this.runHit;
    // physical address + delta = offset in the mapping: the bus address locates the bytes in it
    const delta = e !== null ? busAddr - e.dev_addr - addr : this.runHit ? busAddr - this.curRun!.addr[this.curSeg] - addr : 0;
    if (isWrite) this.effects.deviceWrite(addr, len, e, inMapping, dev?.name ?? name, delta);
    else this.effects.deviceRead(dev, name, addr, len, e, inMapping, delta);
  }

  /** The entry of the run segment deviceOwnership found (runHit): the table settles to make it. */
  private hitEntry(): dma_debug_entry {
    this.table.settleAll();
    return this.curRun!.entryAt(this.curSeg);
  }

  /**
   * The entry the last device access fell in wholly. A device walks an sg list segment after
   * segment: the next access usually falls in the same entry or in the next segment's, and
   * while no address is held by two entries (DmaDebugTable.soleHolder) that entry is what the
   * table walk would find, without the walk.
   */
  private cursor: DmaDebugEntry | null = null;
  /**
   * The same for an sg run the table has not settled (DmaDebugTable.addRun): the run and the
   * segment the last access fell in. While the run is its device's only mapping and its
   * segments are disjoint (runIsSole), the segment is what the table walk would find.
   */
  private curRun: DmaDebugRun | null = null;
  private curSeg = 0;
  /**
   * The last deviceOwnership found the access wholly inside segment curSeg of curRun and
   * returned null: no entry exists for it yet. The segment is live and the device owns it
   * (mapped, and nothing synced it: a sync settles the run).
   */
  private runHit = false;

  /**
   * Walk the access through the device's entries; returns the first covering entry, or null
   * with runHit set when an unsettled run's segment holds it all.
   */
  private deviceOwnership(dev: device, addr: number, len: number, isWrite: boolean): dma_debug_entry | null {
    const table = this.table;
    const run = this.curRun;
    if (run !== null && len > 0 && table.runIsSole(dev, run)) {
      // the next segment first, as below
      const i = this.curSeg;
      const j = i + 1 < run.n && run.holds(i + 1, addr, len) ? i + 1 : run.holds(i, addr, len) ? i : -1;
      if (j >= 0) {
        this.curSeg = j;
        this.runHit = true;
        return null;
      }
    }
    const c = this.cursor;
    if (c !== null) {
      const n = c.next_seg;
      // the next segment first (a walk moves on at every access); both cannot hold the bytes
      // while either is their sole holder, so the order does not change the answer
      const hit = n !== null && addr >= n.dev_addr && table.soleHolder(dev, n, addr, len) ? n : table.soleHolder(dev, c, addr, len) ? c : null;
      if (hit !== null) {
        this.cursor = hit;
        if (hit.domain === "CPU") this.deviceTouchesCpuOwned(hit, addr - hit.dev_addr, addr + len - hit.dev_addr, isWrite);
        return hit;
      }
    }
    // the first segment of a run the table has not settled
    const sole = len > 0 ? table.soleRun(dev) : null;
    if (sole !== null && runDisjoint(sole)) {
      for (let i = 0; i < sole.n; i++) {
        if (!sole.holds(i, addr, len)) continue;
        this.curRun = sole;
        this.curSeg = i;
        this.runHit = true;
        return null;
      }
    }
    const end = addr + len;
    let first: dma_debug_entry | null = null;
    let gapAt = -1;
    let gapBytes = 0;
    let a = addr;
    while (a < end) {
      const e = table.findContaining(dev, a, end - a, DMA_BIDIRECTIONAL);
      const stop = e === null ? a : Math.min(end, e.dev_addr + e.size);
      if (e === null || stop <= a) {
        const gapEnd = Math.min(end, table.nextStart(dev, a));
        if (gapAt < 0) gapAt = a;
        gapBytes += gapEnd - a;
        a = gapEnd;
        continue;
      }
      first ??= e;
      if (e.domain === "CPU") this.deviceTouchesCpuOwned(e, a - e.dev_addr, stop - e.dev_addr, isWrite);
      a = stop;
    }
    if (gapBytes !== 0) {
      const grave = this.graves.at(dev, gapAt);
      this.report.unmapped(dev, gapAt, gapBytes, isWrite, grave);
    }
    this.cursor = first instanceof DmaDebugEntry && gapBytes === 0 && first.dev_addr + first.size >= end ? first : null;
    return first;
  }

  /**
   * The device touched bytes [from, to) of a mapping dma-debug says the CPU owns (some of them,
   * if a partial sync split it). Not a finding for the documented recycle: the last call that
   * gave the CPU-owned bytes touched to the device (a map, or a sync_for_device covering them)
   * came after the CPU's last store into the mapping or next to it in its granules (so no dirty
   * line of the CPU's can meet the device's bytes), and the device uses them the way the
   * direction allows. The device has taken those bytes back, as if the driver had synced them
   * for it: they are the device's until a sync_for_cpu or the unmap gives them back, so a CPU
   * access before that is the cause, even after a partial sync of other bytes.
   */
  private deviceTouchesCpuOwned(e: dma_debug_entry, from: number, to: number, isWrite: boolean): void {
    if (e.cpu_owned) {
      // a split mapping: only the CPU's bytes count (debug-owner.ts)
      if (!dma_debug_owned_part(e, from, to, true, this.owned)) return;
      from = this.owned.lo;
      to = this.owned.hi;
    }
    const r = this.recOf(e);
    const h = e.history;
    // the last call that gave these bytes to the device (a partial sync may not have)
    let d = h.length - 1;
    while (d >= 0 && !dma_history_hands_to_device(h[d], e.dev_addr + from, e.dev_addr + to)) d--;
    const allowed = isWrite ? e.direction !== DMA_TO_DEVICE : e.direction !== DMA_FROM_DEVICE;
    if (r !== undefined && d >= 0 && allowed && r.cpuWriteAt <= d) {
      dma_debug_hand_over(e, from, to, false);
      return;
    }
    this.report.deviceCpuOwned(e, from, to, isWrite);
  }
}

/**
 * The coherence sanitizer's effects (see sanitizer.ts, Theory of operation): bytes that really
 * were stale or lost, detected line by line as the memory system reports loads, stores,
 * write-backs and lines leaving the caches, and as non-coherent devices read and write RAM.
 * The shadow (shadow.ts) holds what devices wrote under cached lines. The causes (who touched
 * what they did not own) are the sanitizer's; this file needs only the mapping a device access
 * fell in, which the sanitizer passes along.
 */

import type { Kernel } from "../../core/kernel.ts";
import type { MemoryObserver } from "../../platform/platform.ts";
import type { device } from "../../include/device.ts";
import type { dma_debug_entry } from "../debug-entry.ts";
import { SAN_LINE, Shadow } from "./shadow.ts";
import { ByteRun } from "./report.ts";
import type { SanFindings, san_stale_read } from "./findings.ts";

const lineOf = (a: number): number => Math.floor(a / SAN_LINE);

export class SanEffects implements MemoryObserver {
  readonly shadow = new Shadow();
  /** Device accesses so far: numbers the device-write episodes effects are counted by. */
  deviceSeq = 0;
  private readonly run = new ByteRun();
  /** Stale bytes the loads of the current CPU access returned, reported when the access ends. */
  private readonly stale: san_stale_read = { fresh: false, run: new ByteRun(), e: null, device: "", wroteNs: 0 };
  private readonly ramBuf = new Uint8Array(SAN_LINE);
  private readonly cacheBuf = new Uint8Array(SAN_LINE);

  constructor(
    private readonly k: Kernel,
    private readonly report: SanFindings,
    /** The entry of the sg run segment the last device access fell in (DmaSanitizer.hitEntry). */
    private readonly hitEntry: () => dma_debug_entry,
  ) {}

  /** A CPU access ended: report the stale bytes its loads returned (after its cause). */
  cpuAccessDone(): void {
    if (this.stale.run.count !== 0) this.report.staleCpuRead(this.stale);
  }

  /**
   * Forget the uncached lines the device wrote through @e: the device-side physical range of
   * the mapping, wherever the IOMMU or a bounce slot put it (the shadow lines name their
   * entry). On the direct path that range starts at the bus address, which also catches lines
   * written there through no mapping.
   */
  pruneShadowOf(e: dma_debug_entry): void {
    this.pruneShadow(e.dev_addr, e.size);
    if (this.shadow.size === 0) return;
    const p = this.k.platform;
    this.shadow.lines.forEach((s, line) => {
      if (s.entry === e && !p.lineCached(line * SAN_LINE)) this.shadow.drop(line);
    });
  }

  /**
   * Lines in no cache can be neither read stale nor written back: forget them. Invalidated
   * lines already went (onLineGone); this catches the ones ordinary evictions took.
   */
  pruneShadow(addr: number, size: number): void {
    const first = lineOf(addr);
    const last = lineOf(addr + Math.max(size, 1) - 1);
    const p = this.k.platform;
    if (last - first + 1 > this.shadow.size) {
      for (const line of [...this.shadow.lines.keys()]) if (line >= first && line <= last && !p.lineCached(line * SAN_LINE)) this.shadow.drop(line);
      return;
    }
    for (let line = first; line <= last; line++) if (this.shadow.get(line) && !p.lineCached(line * SAN_LINE)) this.shadow.drop(line);
  }

  /**
   * A non-coherent device wrote RAM: remember the bytes under cached lines (they may be read
   * stale or lost). @e: the mapping holding them; @inMapping: @e does, or (e null) the run
   * segment the sanitizer found does (made by hitEntry if a line needs it). @delta: physical
   * address + delta = offset in the mapping.
   */
  deviceWrite(addr: number, len: number, e: dma_debug_entry | null, inMapping: boolean, name: string, delta: number): void {
    const p = this.k.platform;
    const now = this.k.exec.now();
    for (let line = lineOf(addr), last = lineOf(addr + len - 1); line <= last; line++) {
      const base = line * SAN_LINE;
      if (!p.lineCached(base)) continue; // the next load fills from RAM: nothing can go stale
      if (inMapping && e === null) e = this.hitEntry();
      this.shadow.mark(line, Math.max(addr, base) - base, Math.min(addr + len, base + SAN_LINE) - base, e, name, now, this.deviceSeq, delta);
    }
  }

  /** A non-coherent device read RAM: did a dirty line hold something newer? (As deviceWrite.) */
  deviceRead(dev: device | null, name: string, addr: number, len: number, e: dma_debug_entry | null, inMapping: boolean, delta: number): void {
    const p = this.k.platform;
    if (!p.anyDirtyLines()) return;
    const run = this.run;
    run.reset();
    for (let line = lineOf(addr), last = lineOf(addr + len - 1); line <= last; line++) {
      const base = line * SAN_LINE;
      if (!p.lineDirty(base)) continue;
      p.peekCached(-1, base, this.cacheBuf, 0, SAN_LINE);
      p.peekRam(base, this.ramBuf, 0, SAN_LINE);
      for (let i = Math.max(addr, base) - base, to = Math.min(addr + len, base + SAN_LINE) - base; i < to; i++) {
        if (this.cacheBuf[i] !== this.ramBuf[i]) run.add(inMapping ? base + i + delta : base + i, base + i, this.cacheBuf[i], this.ramBuf[i]);
      }
    }
    if (run.count !== 0) this.report.staleDeviceRead(dev, name, addr, e ?? (inMapping ? this.hitEntry() : null), run);
  }

  /**
   * A cached load returned `dst[off..off+len)` for one line: compare it with RAM on the bytes a
   * device wrote under a cached copy. Different means stale (collected for the end of the
   * access); equal bytes leave the shadow, they stay right until the device writes again.
   */
  onCpuLoad(_cpu: number, addr: number, len: number, dst: Uint8Array, off: number): void {
    if (this.shadow.size === 0) return;
    const line = lineOf(addr);
    const s = this.shadow.get(line);
    if (s === undefined) return;
    const base = line * SAN_LINE;
    const from = addr - base;
    const to = from + len;
    if (!Shadow.any(s, from, to)) return;
    this.k.platform.peekRam(base, this.ramBuf, 0, SAN_LINE);
    const st = this.stale;
    let staleLine = false;
    let sameLo = 0;
    let sameHi = 0;
    for (let i = from; i < to; i++) {
      if (!Shadow.has(s, i)) continue;
      const got = dst[off + i - from];
      if (got === this.ramBuf[i]) {
        if (i < 32) sameLo |= 1 << i;
        else sameHi |= 1 << (i - 32);
        continue;
      }
      if (!staleLine) {
        staleLine = true;
        // one finding per device write read stale, however many loads see it
        if (this.report.first("stale-cpu-read", s.entry ?? this, "read", s.seq)) st.fresh = true;
      }
      if (st.run.count === 0) {
        st.e = s.entry;
        st.device = s.device;
        st.wroteNs = s.timeNs;
      }
      st.run.add(st.e ? base + i + s.delta : base + i, base + i, this.ramBuf[i], got);
    }
    if (sameLo !== 0 || sameHi !== 0) this.shadow.clearBits(line, sameLo, sameHi);
  }

  /** A line in no cache can be neither read stale nor written back: forget it. */
  onLineGone(addr: number): void {
    if (this.shadow.size !== 0) this.shadow.drop(lineOf(addr));
  }

  /**
   * A CPU store reached the cache (or RAM): the CPU's value is now the newest, so those bytes
   * can no longer be stale or lost. Told line by line as the store happens, before any later
   * write-back of the line (an access-level hook would come too late for a multi-line copy).
   */
  onCpuStore(addr: number, len: number): void {
    if (this.shadow.size === 0) return;
    const line = lineOf(addr);
    if (this.shadow.get(line) === undefined) return;
    const base = line * SAN_LINE;
    this.shadow.clear(line, addr - base, addr - base + len);
  }

  onWriteBack(addr: number, data: Uint8Array, off: number): void {
    const line = lineOf(addr);
    const s = this.shadow.get(line);
    if (s === undefined) return;
    this.k.platform.peekRam(addr, this.ramBuf, 0, SAN_LINE);
    const run = this.run;
    run.reset();
    const e = s.entry;
    for (let i = 0; i < SAN_LINE; i++) {
      if (Shadow.has(s, i) && data[off + i] !== this.ramBuf[i]) run.add(e ? addr + i + s.delta : addr + i, addr + i, this.ramBuf[i], data[off + i]);
    }
    const device = s.device;
    const wroteNs = s.timeNs;
    const seq = s.seq;
    const lineOff = addr + s.delta;
    this.shadow.drop(line); // RAM now holds the line's bytes: nothing stale is left
    if (run.count !== 0) this.report.lostWrite(e, device, addr, wroteNs, seq, run, lineOff);
  }
}

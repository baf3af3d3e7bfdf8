/**
 * A board with a dmac on the platform bus, for qtest-style device tests: registers through
 * CPU 0's MMIO path, descriptors and buffers written straight into RAM. Offsets are re-declared
 * from SPEC.md rather than imported from the model.
 */

import { Board } from "../../hw/machine/board.ts";
import { getProfile } from "../../hw/machine/profiles.ts";
import type { MachineDesc } from "../../hw/machine/schema.ts";
import type { DmacDevice } from "../../hw/dev/dmac/dmac.ts";
import type { AccessSize } from "../../hw/mem/mmio.ts";

export const BASE = 0xd1000000;
export const IRQ = 20;

// SPEC.md section 3
export const ID = 0x000;
export const CAPS = 0x004;
export const GCTRL = 0x008;
export const IRQ_STATUS = 0x00c;
export const ch = (n: number, r: number): number => 0x100 + 0x40 * n + r;
export const CTRL = 0x00;
export const STATUS = 0x04;
export const DESC = 0x08;
export const CUR_DESC = 0x10;
export const CUR_SRC = 0x18;
export const CUR_DST = 0x20;
export const RESIDUE = 0x28;
export const INT_STATUS = 0x2c;
export const INT_ENABLE = 0x30;
export const DONE_COUNT = 0x34;
export const ERR_ADDR = 0x38;
export const pp = (p: number, r: number): number => 0x800 + 0x20 * p + r;
export const PP_DATA = 0x00;
export const PP_CTRL = 0x04;
export const PP_RATE = 0x08;
export const PP_LEVEL = 0x0c;
export const PP_COUNT = 0x10;
export const PP_SUM = 0x14;
export const PP_DEPTH = 0x18;

export const EN = 1;
export const PAUSE = 2;
export const ABORT = 4;
export const mode = (m: number): number => m << 4;
export const burst = (b: number): number => b << 8;
export const ACTIVE = 1;
export const PAUSED = 2;
export const HALTED = 4;
export const DESC_DONE = 1;
export const CHAIN_DONE = 2;
export const ERROR = 4;
export const LAST = 1;
export const IRQF = 2;
export const M2D = 1 << 4;
export const D2M = 2 << 4;

export interface Desc {
  src: number;
  dst: number;
  len: number;
  flags: number;
  next?: number;
}

export interface Rig {
  board: Board;
  dmac: DmacDevice;
  read(off: number, size?: AccessSize): number;
  write(off: number, value: number, size?: AccessSize): void;
  /** Write a 32-byte descriptor into RAM at `addr`. */
  desc(addr: number, d: Desc): void;
  fill(addr: number, data: Uint8Array): void;
  ram(addr: number, len: number): Uint8Array;
  /** Start channel `n` at `first` with `ctrl` (EN added) and the given INT_ENABLE. */
  start(n: number, first: number, ctrl?: number, intEnable?: number): void;
  run(untilNs?: number): void;
  level(): boolean;
  portAddr(p: number): number;
}

export function dmacDesc(opts: { coherent?: boolean; size?: number } = {}): MachineDesc {
  const d = getProfile(opts.coherent ? "x86-coherent" : "arm64-noncoherent");
  d.pci.devices = [];
  d.platform = [{ name: "dmac0", model: "dmac", base: BASE, size: opts.size ?? 0x1000, irq: IRQ }];
  return d;
}

export function rig(opts: { coherent?: boolean; seed?: number } = {}): Rig {
  const board = new Board(dmacDesc(opts), { seed: opts.seed ?? 1 });
  const dmac = board.platformDevices[0].device as DmacDevice;
  const write = (off: number, value: number, size: AccessSize = 4): void => board.mem.mmioWrite(0, BASE + off, value, size);
  const r: Rig = {
    board,
    dmac,
    read: (off, size = 4) => board.mem.mmioRead(0, BASE + off, size),
    write,
    desc: (addr, d) => {
      const v = new DataView(new ArrayBuffer(32));
      v.setBigUint64(0, BigInt(d.src), true);
      v.setBigUint64(8, BigInt(d.dst), true);
      v.setUint32(16, d.len, true);
      v.setUint32(20, d.flags, true);
      v.setBigUint64(24, BigInt(d.next ?? 0), true);
      board.map.ram.write(addr, new Uint8Array(v.buffer), 0, 32);
    },
    fill: (addr, data) => board.map.ram.write(addr, data, 0, data.length),
    ram: (addr, len) => {
      const out = new Uint8Array(len);
      board.map.ram.read(addr, out, 0, len);
      return out;
    },
    start: (n, first, ctrl = 0, intEnable = CHAIN_DONE | ERROR) => {
      write(ch(n, DESC), first, 8);
      write(ch(n, INT_ENABLE), intEnable);
      write(ch(n, CTRL), ctrl | EN);
    },
    run: (untilNs = Infinity) => {
      const s = board.scheduler;
      while (s.peekTime() <= untilNs && s.step()) {
        /* run */
      }
    },
    level: () => board.intc.input[IRQ] !== 0,
    portAddr: (p) => BASE + 0x800 + 0x20 * p,
  };
  write(GCTRL, 1); // ENABLE, as a driver's probe does
  return r;
}

export function pattern(n: number, seed = 7): Uint8Array {
  const a = new Uint8Array(n);
  for (let i = 0; i < n; i++) a[i] = (i * 31 + seed + (i >> 8)) & 0xff;
  return a;
}

/** FNV-1a 32, as SPEC.md section 5 defines PP_SUM. */
export function fnv(data: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const b of data) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

/**
 * CPU accesses to kernel memory: typed loads and stores, memcpy, memset, and copies between
 * kernel memory and host buffers (the simulator's "user space": test data going in and out).
 *
 * Every byte goes through the software MMU and then the CPU's cache model for the memory type
 * of the mapping. There is no other way for kernel or driver code to touch simulated RAM.
 * A fault (unmapped address, bus error) is an oops.
 */

import { current_kernel } from "../core/current.ts";
import { BusError, type AccessSize } from "../platform/platform.ts";
import { KernelOops } from "../core/oops.ts";
import type { vaddr_t } from "../include/types.ts";
import type { Translation } from "./layout.ts";
import { PAGE_SIZE } from "../include/types.ts";

const tr: Translation = { phys: 0, type: 0, mmio: false };
const bounce = new Uint8Array(PAGE_SIZE);

/** Observes CPU accesses to RAM (the coherence sanitizer hooks in here); null when off. */
export interface CpuAccessObserver {
  onCpuAccess(va: vaddr_t, phys: number, len: number, isWrite: boolean, data: Uint8Array | null, dataOff: number): void;
}
let observer: CpuAccessObserver | null = null;
export function set_cpu_access_observer(o: CpuAccessObserver | null): void {
  observer = o;
}

function resolve(va: vaddr_t, isWrite: boolean): void {
  current_kernel().aspace.translate(va, tr, isWrite);
  if (tr.mmio) throw new KernelOops(`BUG: plain memory access to MMIO address 0x${va.toString(16)}; use readl/writel`, va);
}

function busToOops(e: unknown, va: number): never {
  if (e instanceof BusError) throw new KernelOops(`Unhandled bus error at virtual address 0x${va.toString(16)} (physical 0x${e.addr.toString(16)})`, va);
  throw e;
}

function load(va: vaddr_t, size: AccessSize): number {
  const k = current_kernel();
  resolve(va, false);
  try {
    if ((tr.phys % PAGE_SIZE) + size > PAGE_SIZE) return loadSplit(va, size);
    const v = k.platform.load(k.exec.cpu, tr.phys, size, tr.type);
    if (observer) observer.onCpuAccess(va, tr.phys, size, false, null, 0);
    return v;
  } catch (e) {
    return busToOops(e, va);
  }
}

function loadSplit(va: vaddr_t, size: AccessSize): number {
  memcpy_from_kernel(bounce, 0, va, size);
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = v * 256 + bounce[i];
  return v;
}

function store(va: vaddr_t, value: number, size: AccessSize): void {
  const k = current_kernel();
  resolve(va, true);
  try {
    if ((tr.phys % PAGE_SIZE) + size > PAGE_SIZE) {
      let v = value;
      for (let i = 0; i < size; i++) {
        bounce[i] = v % 256;
        v = Math.floor(v / 256);
      }
      memcpy_to_kernel(va, bounce, 0, size);
      return;
    }
    k.platform.store(k.exec.cpu, tr.phys, value, size, tr.type);
    if (observer) observer.onCpuAccess(va, tr.phys, size, true, null, 0);
  } catch (e) {
    busToOops(e, va);
  }
}

export const kread8 = (p: vaddr_t): number => load(p, 1);
export const kread16 = (p: vaddr_t): number => load(p, 2);
export const kread32 = (p: vaddr_t): number => load(p, 4);
export const kread64 = (p: vaddr_t): number => load(p, 8);
export const kwrite8 = (p: vaddr_t, v: number): void => store(p, v, 1);
export const kwrite16 = (p: vaddr_t, v: number): void => store(p, v, 2);
export const kwrite32 = (p: vaddr_t, v: number): void => store(p, v, 4);
export const kwrite64 = (p: vaddr_t, v: number): void => store(p, v, 8);

/** Copy kernel memory into a host buffer, page by page (mappings may be discontiguous). */
export function memcpy_from_kernel(dst: Uint8Array, dstOff: number, src: vaddr_t, n: number): void {
  const k = current_kernel();
  while (n > 0) {
    resolve(src, false);
    const chunk = Math.min(n, PAGE_SIZE - (tr.phys % PAGE_SIZE));
    try {
      k.platform.read(k.exec.cpu, tr.phys, dst, dstOff, chunk, tr.type);
    } catch (e) {
      busToOops(e, src);
    }
    if (observer) observer.onCpuAccess(src, tr.phys, chunk, false, dst, dstOff);
    src += chunk;
    dstOff += chunk;
    n -= chunk;
  }
}

/** Copy a host buffer into kernel memory. */
export function memcpy_to_kernel(dst: vaddr_t, src: Uint8Array, srcOff: number, n: number): void {
  const k = current_kernel();
  while (n > 0) {
    resolve(dst, true);
    const chunk = Math.min(n, PAGE_SIZE - (tr.phys % PAGE_SIZE));
    try {
      k.platform.write(k.exec.cpu, tr.phys, src, srcOff, chunk, tr.type);
    } catch (e) {
      busToOops(e, dst);
    }
    if (observer) observer.onCpuAccess(dst, tr.phys, chunk, true, src, srcOff);
    dst += chunk;
    srcOff += chunk;
    n -= chunk;
  }
}

/** memcpy - copy n bytes between kernel addresses (through the CPU, a page at a time). */
export function memcpy(dst: vaddr_t, src: vaddr_t, n: number): vaddr_t {
  let done = 0;
  while (done < n) {
    const chunk = Math.min(n - done, PAGE_SIZE);
    memcpy_from_kernel(bounce, 0, src + done, chunk);
    memcpy_to_kernel(dst + done, bounce, 0, chunk);
    done += chunk;
  }
  return dst;
}

/** memset - fill n bytes with c. */
export function memset(p: vaddr_t, c: number, n: number): vaddr_t {
  const k = current_kernel();
  let va = p;
  while (n > 0) {
    resolve(va, true);
    const chunk = Math.min(n, PAGE_SIZE - (tr.phys % PAGE_SIZE));
    try {
      k.platform.fill(k.exec.cpu, tr.phys, c & 0xff, chunk, tr.type);
    } catch (e) {
      busToOops(e, va);
    }
    if (observer) observer.onCpuAccess(va, tr.phys, chunk, true, null, 0);
    va += chunk;
    n -= chunk;
  }
  return p;
}

/** copy_from_user - bring host data (the outside world) into kernel memory. Returns 0. */
export function copy_from_user(to: vaddr_t, from: Uint8Array, n: number = from.length): number {
  memcpy_to_kernel(to, from, 0, n);
  return 0;
}

/** copy_to_user - hand kernel memory out to the host. Returns 0. */
export function copy_to_user(to: Uint8Array, from: vaddr_t, n: number = to.length): number {
  memcpy_from_kernel(to, 0, from, n);
  return 0;
}

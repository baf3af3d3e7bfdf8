/**
 * DMA pools (§3.2; mm/dmapool.c): many small, equally sized coherent blocks carved from
 * dma_alloc_coherent pages, for descriptors and the like.
 *
 * Layout follows Linux 6.x: a pool "page" is max(PAGE_SIZE, block size) bytes of coherent
 * memory, cut into blocks at multiples of the (aligned) block size, skipping to the next
 * `boundary` whenever a block would cross one, so no block ever straddles a boundary. Free
 * blocks are handed out last-freed-first. The free list lives on the host side (Linux threads
 * it through the free blocks themselves), so a driver scribbling on a freed block cannot break
 * the allocator, only be caught by it.
 *
 * Pool debugging is always on (a simulator is a debug kernel): blocks are poisoned with
 * POOL_POISON_FREED when free and POOL_POISON_ALLOCATED when handed out (zeroed instead for
 * dma_pool_zalloc), and dma_pool_alloc checks that a free block still holds its poison (a
 * write after free by the CPU or the device shows up there). dma_pool_free catches a handle
 * from no page of the pool ("bad dma"), a CPU address that does not match the handle ("bad
 * vaddr") and a double free ("already free"); each is logged as Linux logs it and becomes a
 * finding, and the block is not freed. Destroying a pool with blocks still allocated logs
 * "busy" and leaks its pages, as Linux does (a memory-leak finding; the pages also show up as
 * DMA allocations pending when the driver unbinds).
 */

import type { Kernel } from "../core/kernel.ts";
import { current_kernel } from "../core/current.ts";
import { KERN_ERR } from "../core/printk.ts";
import type { FindingHistoryEntry, FindingKind } from "../core/findings.ts";
import type { device } from "../include/device.ts";
import { PAGE_SIZE, __GFP_ZERO, type dma_addr_t, type gfp_t, type vaddr_t } from "../include/types.ts";
import { memcpy_from_kernel, memset } from "../mm/access.ts";
import { devres_add_data, devres_release_node } from "../base/devres.ts";
import { dma_addr_holder, dma_fmt_addr, type dma_addr_ref } from "./defs.ts";
import { dma_alloc_coherent, dma_free_coherent } from "./coherent.ts";

export const POOL_POISON_FREED = 0xa7;
export const POOL_POISON_ALLOCATED = 0xa9;

const NULL = 0;
const hex = (n: number): string => `0x${n.toString(16)}`;

interface dma_pool_page {
  readonly vaddr: vaddr_t;
  readonly dma: dma_addr_t;
  /** Offsets of the blocks laid out in this page. */
  readonly blocks: ReadonlySet<number>;
}

/** struct dma_pool. Drivers hold it and pass it back; they never read its fields. */
export class dma_pool {
  readonly pages: dma_pool_page[] = [];
  /** Free blocks (device addresses), popped from the end. */
  readonly free_list: dma_addr_t[] = [];
  /** The same, as a set: "already free" in O(1). */
  readonly free_set = new Set<number>();
  /** Blocks handed out and not freed. */
  nr_active = 0;
  nr_blocks = 0;
  destroyed = false;
  /** Recent calls per block (by device address), for the history of a finding. */
  readonly history = new Map<number, FindingHistoryEntry[]>();

  constructor(
    readonly name: string,
    readonly dev: device,
    readonly size: number,
    readonly boundary: number,
    readonly allocation: number,
  ) {}
}

/**
 * dma_pool_create - a pool of @size-byte coherent blocks for @dev
 * @name: for messages
 * @size: block size (rounded up to @align, at least 4)
 * @align: block alignment, a power of two (0 means 1)
 * @boundary: blocks never cross a multiple of it; a power of two >= the block size, or 0 for
 *            no restriction (then the page size, or the block size if larger)
 * Context: process (may sleep); WARNs from interrupt context.
 * Returns: the pool, or null for a bad argument (align or boundary not a power of two,
 * size 0, boundary smaller than the rounded size).
 */
export function dma_pool_create(name: string, dev: device, size: number, align: number, boundary: number): dma_pool | null {
  const k = current_kernel();
  if (k.exec.context !== "process") k.warn(`dma_pool_create(${name}) called from ${k.exec.context} context (it may sleep)`, `${dev.name}: `);
  if (align === 0) align = 1;
  else if (!is_pow2(align)) return null;
  if (!Number.isSafeInteger(size) || size <= 0) return null;
  if (size < 4) size = 4;
  size = Math.ceil(size / align) * align;
  const allocation = Math.max(size, PAGE_SIZE);
  if (!boundary) boundary = allocation;
  else if (!is_pow2(boundary) || boundary < size) return null;
  boundary = Math.min(boundary, allocation);
  return new dma_pool(name, dev, size, boundary, allocation);
}

/** Power of two, for any safe integer (JS bit operators stop at 32 bits). */
function is_pow2(n: number): boolean {
  if (!Number.isSafeInteger(n) || n <= 0) return false;
  while (n % 2 === 0) n /= 2;
  return n === 1;
}

function note(k: Kernel, pool: dma_pool, dma: number, op: string, detail: string): FindingHistoryEntry[] {
  let h = pool.history.get(dma);
  if (!h) {
    h = [];
    pool.history.set(dma, h);
  }
  h.push({ timeNs: k.exec.now(), op, detail });
  if (h.length > 8) h.shift();
  return h;
}

/** pool_initialise_page: a new coherent page, poisoned, its blocks pushed lowest first. */
function pool_alloc_page(pool: dma_pool, gfp: gfp_t): dma_pool_page | null {
  const h = dma_addr_holder();
  const vaddr = dma_alloc_coherent(pool.dev, pool.allocation, h, gfp);
  if (!vaddr) return null;
  memset(vaddr, POOL_POISON_FREED, pool.allocation);
  const blocks = new Set<number>();
  let next_boundary = pool.boundary;
  for (let off = 0; off + pool.size <= pool.allocation; ) {
    if (off + pool.size > next_boundary) {
      off = next_boundary;
      next_boundary += pool.boundary;
      continue;
    }
    blocks.add(off);
    off += pool.size;
  }
  const page: dma_pool_page = { vaddr, dma: h.value, blocks };
  pool.pages.push(page);
  const offs = [...blocks].reverse();
  for (const off of offs) push_free(pool, (page.dma + off) as dma_addr_t);
  pool.nr_blocks += blocks.size;
  return page;
}

function push_free(pool: dma_pool, dma: dma_addr_t): void {
  pool.free_list.push(dma);
  pool.free_set.add(dma);
}

function page_of(pool: dma_pool, dma: number): dma_pool_page | null {
  for (const p of pool.pages) if (dma >= p.dma && dma < p.dma + pool.allocation) return p;
  return null;
}

let scratch = new Uint8Array(64);

/** pool_check_block: a free block must still hold its poison. */
function check_poison(k: Kernel, pool: dma_pool, vaddr: vaddr_t, dma: number): void {
  if (scratch.length < pool.size) scratch = new Uint8Array(pool.size);
  memcpy_from_kernel(scratch, 0, vaddr, pool.size);
  for (let i = 0; i < pool.size; i++) {
    if (scratch[i] === POOL_POISON_FREED) continue;
    const text = `dma_pool_alloc ${pool.name}, ${hex(vaddr)} (corrupted): byte ${i} of the free block is 0x${scratch[i].toString(16)}, not the poison 0x${POOL_POISON_FREED.toString(16)}`;
    pool_error(k, pool, "warn", text, "Do not touch a pool block after dma_pool_free(), from the CPU or the device (stop the device's DMA before freeing).", dma);
    return;
  }
}

/**
 * dma_pool_alloc - a block from @pool
 * @mem_flags: GFP_KERNEL, or GFP_ATOMIC in interrupt context / under a lock; __GFP_ZERO zeroes
 * @handle: out: the block's bus address
 * Context: process; any with GFP_ATOMIC.
 * Returns: the block's CPU address, or NULL (0) when no coherent page could be had.
 */
export function dma_pool_alloc(pool: dma_pool, mem_flags: gfp_t, handle: dma_addr_ref): vaddr_t {
  const k = current_kernel();
  if (pool.destroyed) {
    k.warn(`dma_pool_alloc: pool ${pool.name} was destroyed`, `${pool.dev.name}: `);
    return NULL;
  }
  if (pool.free_list.length === 0 && !pool_alloc_page(pool, mem_flags)) return NULL;
  const dma = pool.free_list.pop()!;
  pool.free_set.delete(dma);
  const page = page_of(pool, dma)!;
  const vaddr = page.vaddr + (dma - page.dma);
  check_poison(k, pool, vaddr, dma);
  memset(vaddr, mem_flags & __GFP_ZERO ? 0 : POOL_POISON_ALLOCATED, pool.size);
  pool.nr_active++;
  note(k, pool, dma, "dma_pool_alloc", `pool=${pool.name} dma=${dma_fmt_addr(dma)} vaddr=${hex(vaddr)}`);
  handle.value = dma;
  return vaddr;
}

/** dma_pool_zalloc - dma_pool_alloc, zeroed. */
export function dma_pool_zalloc(pool: dma_pool, mem_flags: gfp_t, handle: dma_addr_ref): vaddr_t {
  return dma_pool_alloc(pool, mem_flags | __GFP_ZERO, handle);
}

/** Log a pool error as mm/dmapool.c does (dev_err) and record the finding. */
function pool_error(k: Kernel, pool: dma_pool, kind: FindingKind, text: string, fix: string, dma: number): void {
  const dev = pool.dev;
  const drv = k.exec.owner || dev.driver?.name || dev.bus;
  k.printk.log(KERN_ERR, text, `${drv} ${dev.name}: `);
  k.findings.add({
    kind,
    severity: "error",
    timeNs: k.exec.now(),
    driver: drv,
    device: dev.name,
    message: `${drv} ${dev.name}: ${text}`,
    fix,
    details: { pool: pool.name, block_size: pool.size, dev_addr: dma_fmt_addr(dma) },
    history: [...(pool.history.get(dma) ?? [])],
  });
}

/** pool_block_err: why (@vaddr, @dma) cannot be freed, or null. */
function block_err(k: Kernel, pool: dma_pool, vaddr: vaddr_t, dma: dma_addr_t): boolean {
  const page = page_of(pool, dma);
  const off = page ? dma - page.dma : -1;
  if (!page || !page.blocks.has(off)) {
    const text = `dma_pool_free ${pool.name}, ${hex(vaddr)}/${dma_fmt_addr(dma)} (bad dma)`;
    pool_error(k, pool, "unmap-not-mapped", text, "Free a pool block with the handle dma_pool_alloc() returned for it, to the pool it came from.", dma);
    return true;
  }
  if (vaddr !== page.vaddr + off) {
    const text = `dma_pool_free ${pool.name}, ${hex(vaddr)} (bad vaddr)/${dma_fmt_addr(dma)}`;
    pool_error(k, pool, "free-coherent-mismatch", text, "Pass dma_pool_free() the CPU address and the handle of the same block, as dma_pool_alloc() returned them.", dma);
    return true;
  }
  if (pool.free_set.has(dma)) {
    note(k, pool, dma, "dma_pool_free", "again");
    const text = `dma_pool_free ${pool.name}, dma ${dma_fmt_addr(dma)} already free`;
    pool_error(k, pool, "unmap-not-mapped", text, "Free each pool block once; clear your pointer to it when you free it.", dma);
    return true;
  }
  return false;
}

/**
 * dma_pool_free - give a block back to @pool
 * @vaddr, @dma: the block's CPU address and handle, as dma_pool_alloc returned them
 * Context: any (also interrupt context).
 * A block that does not belong to the pool, a mismatched pair or a double free is reported
 * and not freed. The freed block is poisoned.
 */
export function dma_pool_free(pool: dma_pool, vaddr: vaddr_t, dma: dma_addr_t): void {
  const k = current_kernel();
  if (block_err(k, pool, vaddr, dma)) return;
  memset(vaddr, POOL_POISON_FREED, pool.size);
  push_free(pool, dma);
  pool.nr_active--;
  note(k, pool, dma, "dma_pool_free", `pool=${pool.name} dma=${dma_fmt_addr(dma)}`);
}

/**
 * dma_pool_destroy - free @pool and its pages. NULL does nothing.
 * Context: process (may sleep).
 * With blocks still allocated the pool is "busy": logged, a memory-leak finding, and the
 * pages are leaked (not freed), as Linux does: freeing memory the device may still use would
 * be worse.
 */
export function dma_pool_destroy(pool: dma_pool | null): void {
  if (!pool || pool.destroyed) return;
  const k = current_kernel();
  pool.destroyed = true;
  if (pool.nr_active) {
    const text = `dma_pool_destroy ${pool.name} busy`;
    pool_error(k, pool, "memory-leak", text, "Free every block with dma_pool_free() before dma_pool_destroy().", pool.pages[0]?.dma ?? 0);
  } else {
    for (const p of pool.pages) dma_free_coherent(pool.dev, pool.allocation, p.vaddr, p.dma);
  }
  pool.pages.length = 0;
  pool.free_list.length = 0;
  pool.free_set.clear();
}

/**
 * dmam_pool_create - dma_pool_create, destroyed automatically when the driver detaches
 * Context: process. Returns: as dma_pool_create.
 */
export function dmam_pool_create(name: string, dev: device, size: number, align: number, allocation: number): dma_pool | null {
  const pool = dma_pool_create(name, dev, size, align, allocation);
  if (pool) devres_add_data(dev, `dmam_pool_release(${name})`, pool, () => dma_pool_destroy(pool));
  return pool;
}

/**
 * dmam_pool_destroy - destroy a managed pool early. WARNs if @pool is not a managed pool of
 * its device. Context: process.
 */
export function dmam_pool_destroy(pool: dma_pool): void {
  const found = devres_release_node(pool.dev, (name, data) => name.startsWith("dmam_pool_release(") && data === pool);
  if (!found) current_kernel().warn(`dmam_pool_destroy: pool ${pool.name} is not managed`, `${pool.dev.name}: `);
}

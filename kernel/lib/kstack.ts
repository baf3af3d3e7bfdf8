/**
 * Kernel stack buffers: what `u8 buf[64];` inside a C function is.
 *
 * A driver has no stack of its own here (its code runs as host functions), so a local array
 * is modelled by with_stack_buffer(): it maps fresh pages into the kernel stack region
 * (REGION_STACK, page-mapped like a CONFIG_VMAP_STACK stack) for the duration of the call and
 * unmaps them afterwards, so a pointer kept past the "return" faults. The frames are
 * physically contiguous (one page-allocator block), and they are registered as stack pages,
 * so dma-debug can tell a stack buffer even when it reaches the DMA API as a page (through an
 * sg entry) rather than as a stack address. DMA to the stack is always a bug; this helper
 * exists so the simulator can show it.
 */

import type { Kernel } from "../core/kernel.ts";
import { current_kernel } from "../core/current.ts";
import { BUG } from "../core/oops.ts";
import { PAGE_SIZE, type vaddr_t } from "../include/types.ts";
import { REGION_STACK } from "../mm/layout.ts";
import { orderFor } from "../mm/slab.ts";

/** Frame numbers of live stack buffers (what check_for_stack compares pages with). */
function stack_pfns(k: Kernel): Set<number> {
  return k.state("kstack", () => new Set<number>());
}

/**
 * kstack_pages - the frame numbers of live kernel stack buffers, or undefined while none was
 * ever made. For a caller asking about many pages at once (an sg list): fetch the set once.
 * The set is live (it changes as stack buffers come and go); do not modify it.
 * Context: any.
 */
export function kstack_pages(k: Kernel): ReadonlySet<number> | undefined {
  return k.subsys.get("kstack") as Set<number> | undefined;
}

/** is_stack_page - is frame @pfn part of a live kernel stack buffer? Context: any. */
export function is_stack_page(k: Kernel, pfn: number): boolean {
  const s = k.subsys.get("kstack") as Set<number> | undefined;
  return s !== undefined && s.has(pfn);
}

interface stack_area {
  readonly va: vaddr_t;
  readonly phys: number;
  readonly pages: number;
}

function stack_map(k: Kernel, size: number): stack_area {
  if (!Number.isSafeInteger(size) || size <= 0) BUG(`stack buffer of invalid size ${size}`);
  const order = orderFor(size);
  const phys = k.pages.alloc(order, 0);
  if (phys < 0) BUG("kernel stack: out of memory");
  const pages = 1 << order;
  const pfns = Array.from({ length: pages }, (_, i) => phys / PAGE_SIZE + i);
  const va = k.aspace.mapPages(REGION_STACK, pfns);
  const live = stack_pfns(k);
  for (const p of pfns) live.add(p);
  return { va, phys, pages };
}

function stack_unmap(k: Kernel, a: stack_area): void {
  k.aspace.unmapPages(a.va, a.pages);
  const live = stack_pfns(k);
  for (let i = 0; i < a.pages; i++) live.delete(a.phys / PAGE_SIZE + i);
  k.pages.free(a.phys);
}

/**
 * with_stack_buffer - run @fn with a @size-byte buffer on the kernel stack
 * @size: bytes (the buffer starts page-aligned; its contents are undefined, as a C local's)
 * @fn: receives the buffer's (stack-region) address; may be async (the buffer then lives
 *      until the promise settles, as a sleeping function's frame does)
 * Context: any.
 * Returns: what @fn returns. The buffer is gone afterwards: touching it faults.
 */
export function with_stack_buffer<T>(size: number, fn: (buf: vaddr_t) => T): T {
  const k = current_kernel();
  const area = stack_map(k, size);
  let async = false;
  try {
    const r = fn(area.va);
    if (r instanceof Promise) {
      async = true;
      return r.finally(() => stack_unmap(k, area)) as T;
    }
    return r;
  } finally {
    if (!async) stack_unmap(k, area);
  }
}

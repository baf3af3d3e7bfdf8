/**
 * Copies between a linear buffer and the memory an sg list describes (lib/scatterlist.c:
 * sg_copy_buffer and friends).
 *
 * The CPU does these copies, so every byte goes through the CPU accessors and the cache
 * model, exactly like a driver's memcpy: copying into a list the device owns is a CPU access
 * to a device-owned buffer, and a copy out of a FROM_DEVICE list before dma_sync_sg_for_cpu
 * can read stale lines. The linear side may be a kernel address (as in Linux) or a host
 * Uint8Array (data coming from or going to the outside world, like copy_from_user).
 */

import type { vaddr_t } from "../include/types.ts";
import { memcpy, memcpy_from_kernel, memcpy_to_kernel, memset } from "../mm/access.ts";
import { for_each_sg, sg_virt, type sg_list } from "./scatterlist.ts";

/** The linear side of a copy: a kernel virtual address or a host buffer. */
export type sg_linear_buf = vaddr_t | Uint8Array;

/**
 * Visit the list's bytes [@skip, @skip + @buflen) piece by piece: @fn gets each piece's kernel
 * address, its offset in the walked range and its length. Returns: bytes visited (less than
 * @buflen if the list is shorter). The one walk behind sg_copy_buffer and sg_zero_buffer.
 */
function sg_walk_range(sgl: sg_list, nents: number, buflen: number, skip: number, fn: (va: vaddr_t, done: number, n: number) => void): number {
  let done = 0;
  for (const [sg] of for_each_sg(sgl, nents)) {
    if (done >= buflen) break;
    if (skip >= sg.length) {
      skip -= sg.length;
      continue;
    }
    const n = Math.min(sg.length - skip, buflen - done);
    fn(sg_virt(sg) + skip, done, n);
    skip = 0;
    done += n;
  }
  return done;
}

/**
 * sg_copy_buffer - copy between @buf and the list, starting @skip bytes into the list
 * @to_buffer: true copies list -> @buf, false copies @buf -> list
 * Context: any.
 * Returns: bytes copied (less than @buflen if the list is shorter).
 */
export function sg_copy_buffer(sgl: sg_list, nents: number, buf: sg_linear_buf, buflen: number, skip: number, to_buffer: boolean): number {
  return sg_walk_range(sgl, nents, buflen, skip, (va, done, n) => {
    if (typeof buf === "number") {
      if (to_buffer) memcpy(buf + done, va, n);
      else memcpy(va, buf + done, n);
    } else if (to_buffer) {
      memcpy_from_kernel(buf, done, va, n);
    } else {
      memcpy_to_kernel(va, buf, done, n);
    }
  });
}

/** sg_copy_from_buffer - copy @buflen bytes from @buf into the list. Returns: bytes copied. */
export function sg_copy_from_buffer(sgl: sg_list, nents: number, buf: sg_linear_buf, buflen: number): number {
  return sg_copy_buffer(sgl, nents, buf, buflen, 0, false);
}

/** sg_copy_to_buffer - copy up to @buflen bytes of the list into @buf. Returns: bytes copied. */
export function sg_copy_to_buffer(sgl: sg_list, nents: number, buf: sg_linear_buf, buflen: number): number {
  return sg_copy_buffer(sgl, nents, buf, buflen, 0, true);
}

/** sg_pcopy_from_buffer - sg_copy_from_buffer starting @skip bytes into the list. */
export function sg_pcopy_from_buffer(sgl: sg_list, nents: number, buf: sg_linear_buf, buflen: number, skip: number): number {
  return sg_copy_buffer(sgl, nents, buf, buflen, skip, false);
}

/** sg_pcopy_to_buffer - sg_copy_to_buffer starting @skip bytes into the list. */
export function sg_pcopy_to_buffer(sgl: sg_list, nents: number, buf: sg_linear_buf, buflen: number, skip: number): number {
  return sg_copy_buffer(sgl, nents, buf, buflen, skip, true);
}

/**
 * sg_zero_buffer - zero @buflen bytes of the list starting @skip bytes in
 * Context: any. Returns: bytes zeroed.
 */
export function sg_zero_buffer(sgl: sg_list, nents: number, buflen: number, skip: number): number {
  return sg_walk_range(sgl, nents, buflen, skip, (va, _done, n) => memset(va, 0, n));
}

/**
 * Sparse RAM: physical memory stored as 4 KiB pages allocated on first write.
 *
 * A 64 GiB machine costs only the pages it touches. A page never written reads as zero without
 * being allocated. Pages are looked up by page-frame number; the last page used is cached so a
 * sequential copy pays the map lookup once per page, not once per byte.
 */

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;
const PAGE_MASK = PAGE_SIZE - 1;

export class SparseRam {
  private pages = new Map<number, Uint8Array>();
  private lastPfn = -1;
  private lastPage: Uint8Array | null = null;
  private static readonly ZERO = new Uint8Array(PAGE_SIZE);

  /** Pages actually backed by host memory. */
  get residentPages(): number {
    return this.pages.size;
  }

  /** The backing page for `pfn`, allocating it when `create` is set; null when absent. */
  page(pfn: number, create: boolean): Uint8Array | null {
    if (pfn === this.lastPfn) return this.lastPage;
    let p = this.pages.get(pfn);
    if (!p) {
      if (!create) return null;
      p = new Uint8Array(PAGE_SIZE);
      this.pages.set(pfn, p);
    }
    this.lastPfn = pfn;
    this.lastPage = p;
    return p;
  }

  /** Copy `len` bytes at physical `addr` into `dst[dstOff..]`. */
  read(addr: number, dst: Uint8Array, dstOff: number, len: number): void {
    while (len > 0) {
      const pfn = Math.floor(addr / PAGE_SIZE);
      const off = addr & PAGE_MASK;
      const n = Math.min(len, PAGE_SIZE - off);
      const p = this.page(pfn, false) ?? SparseRam.ZERO;
      if (n === PAGE_SIZE) dst.set(p, dstOff); // a whole page: no view to allocate
      else dst.set(p.subarray(off, off + n), dstOff);
      addr += n;
      dstOff += n;
      len -= n;
    }
  }

  /** Copy `len` bytes from `src[srcOff..]` to physical `addr`. */
  write(addr: number, src: Uint8Array, srcOff: number, len: number): void {
    while (len > 0) {
      const pfn = Math.floor(addr / PAGE_SIZE);
      const off = addr & PAGE_MASK;
      const n = Math.min(len, PAGE_SIZE - off);
      const p = this.page(pfn, true)!;
      if (n === PAGE_SIZE && srcOff === 0 && src.length === PAGE_SIZE) p.set(src);
      else p.set(src.subarray(srcOff, srcOff + n), off);
      addr += n;
      srcOff += n;
      len -= n;
    }
  }

  /** Fill `len` bytes at `addr` with `value`. */
  fill(addr: number, value: number, len: number): void {
    while (len > 0) {
      const pfn = Math.floor(addr / PAGE_SIZE);
      const off = addr & PAGE_MASK;
      const n = Math.min(len, PAGE_SIZE - off);
      const p = this.page(pfn, value !== 0);
      if (p) p.fill(value, off, off + n);
      addr += n;
      len -= n;
    }
  }
}

/**
 * Sparse RAM: physical memory stored as 4 KiB pages allocated on first write.
 *
 * A 64 GiB machine costs only the pages it touches. A page never written reads as zero without
 * being allocated. Pages are looked up by page-frame number; the last page used is cached so a
 * sequential copy pays the map lookup once per page, not once per byte.
 */

// PAGE (module-private) is what the code below uses: an exported binding lives in a cell that
// V8 loads and hole-checks at every use, even in this module, so `addr / PAGE_SIZE` would be a
// real division per access; a private const folds into a multiplication.
const PAGE = 4096;
const PAGE_MASK = PAGE - 1;
export const PAGE_SHIFT = 12;
export const PAGE_SIZE = PAGE;
/**
 * Copies up to this many bytes (a cache line, a descriptor, a register-sized access) go byte
 * by byte when both ranges are in bounds: cheaper than the subarray view TypedArray.set would
 * need, and allocation-free. (Out of bounds keeps TypedArray.set's behaviour.)
 */
const SMALL_COPY = 64;
/**
 * TypedArray.prototype.set, called as `U8_SET.call(dst, src, off)` on the page-copy paths.
 * `dst.set` is a property load whose inline cache sees every kind of array the simulator
 * copies into (device buffers, Buffers, cache-line arrays...), goes megamorphic and costs a
 * generic lookup per page; a call through the known builtin costs none.
 */
const U8_SET = Uint8Array.prototype.set;

/** Pages per directory chunk (a power of two): 4096 pages = 16 MiB of physical memory. */
const CHUNK_PAGES = 4096;
/**
 * Chunks reachable through the directory array: pfns below 2^32 (16 TiB of physical address
 * space) resolve with two array reads; higher ones (no machine we model) through a Map.
 */
const DIR_CHUNKS = 2 ** 32 / CHUNK_PAGES;

export class SparseRam {
  /**
   * Backing pages by pfn, two levels: a directory of chunks, each an array of CHUNK_PAGES page
   * slots, made when a page of it is first written. A scattered DMA (a different page at every
   * access) then costs two array reads per page instead of a hash look-up, and the directory
   * only grows as far as the highest chunk written (a few thousand slots for 64 GiB).
   */
  private readonly dir: (Array<Uint8Array | undefined> | undefined)[] = [];
  /** Pages of pfn >= 2^32 (never on the machines we model; kept for completeness). */
  private readonly high = new Map<number, Uint8Array>();
  private resident = 0;
  private lastPfn = -1;
  private lastPage: Uint8Array | null = null;
  private static readonly ZERO = new Uint8Array(PAGE);

  /** Pages actually backed by host memory. */
  get residentPages(): number {
    return this.resident;
  }

  /** The backing page for `pfn`, allocating it when `create` is set; null when absent. */
  page(pfn: number, create: boolean): Uint8Array | null {
    if (pfn === this.lastPfn) return this.lastPage;
    let p: Uint8Array | undefined;
    if (pfn < DIR_CHUNKS * CHUNK_PAGES) {
      const chunk = this.dir[(pfn / CHUNK_PAGES) >>> 0]; // pfn < 2^32: >>> 0 floors
      p = chunk === undefined ? undefined : chunk[pfn & (CHUNK_PAGES - 1)];
    } else {
      p = this.high.get(pfn);
    }
    if (p === undefined) {
      if (!create) return null;
      p = this.allocate(pfn);
    }
    this.lastPfn = pfn;
    this.lastPage = p;
    return p;
  }

  private allocate(pfn: number): Uint8Array {
    const p = new Uint8Array(PAGE);
    this.resident++;
    if (pfn >= DIR_CHUNKS * CHUNK_PAGES) {
      this.high.set(pfn, p);
      return p;
    }
    const c = (pfn / CHUNK_PAGES) >>> 0;
    while (this.dir.length <= c) this.dir.push(undefined);
    let chunk = this.dir[c];
    if (chunk === undefined) {
      chunk = new Array<Uint8Array | undefined>(CHUNK_PAGES).fill(undefined);
      this.dir[c] = chunk;
    }
    chunk[pfn & (CHUNK_PAGES - 1)] = p;
    return p;
  }

  /** Copy `len` bytes at physical `addr` into `dst[dstOff..]`. */
  read(addr: number, dst: Uint8Array, dstOff: number, len: number): void {
    // One whole page (a page-sized DMA segment): no loop, no view.
    if (len === PAGE && (addr & PAGE_MASK) === 0) {
      U8_SET.call(dst, this.page(addr / PAGE, false) ?? SparseRam.ZERO, dstOff);
      return;
    }
    while (len > 0) {
      const off = addr & PAGE_MASK; // ToInt32 keeps the low 32 bits: exact for the offset
      const n = Math.min(len, PAGE - off);
      const p = this.page((addr - off) / PAGE, false) ?? SparseRam.ZERO;
      if (n === PAGE) U8_SET.call(dst, p, dstOff); // a whole page: no view to allocate
      else if (n <= SMALL_COPY && dstOff >= 0 && dstOff + n <= dst.length) for (let i = 0; i < n; i++) dst[dstOff + i] = p[off + i];
      else dst.set(p.subarray(off, off + n), dstOff);
      addr += n;
      dstOff += n;
      len -= n;
    }
  }

  /** Copy `len` bytes from `src[srcOff..]` to physical `addr`. */
  write(addr: number, src: Uint8Array, srcOff: number, len: number): void {
    while (len > 0) {
      const off = addr & PAGE_MASK;
      const n = Math.min(len, PAGE - off);
      const p = this.page((addr - off) / PAGE, true)!;
      if (n === PAGE && srcOff === 0 && src.length === PAGE) p.set(src);
      else if (n <= SMALL_COPY && srcOff >= 0 && srcOff + n <= src.length) for (let i = 0; i < n; i++) p[off + i] = src[srcOff + i];
      else p.set(src.subarray(srcOff, srcOff + n), off);
      addr += n;
      srcOff += n;
      len -= n;
    }
  }

  /** Fill `len` bytes at `addr` with `value`. */
  fill(addr: number, value: number, len: number): void {
    while (len > 0) {
      const pfn = Math.floor(addr / PAGE);
      const off = addr & PAGE_MASK;
      const n = Math.min(len, PAGE - off);
      const p = this.page(pfn, value !== 0);
      if (p) p.fill(value, off, off + n);
      addr += n;
      len -= n;
    }
  }
}

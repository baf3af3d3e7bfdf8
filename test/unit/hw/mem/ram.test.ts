import { describe, expect, it } from "vitest";
import { PAGE_SIZE, SparseRam } from "../../../../hw/mem/ram.ts";

const bytes = (...v: number[]): Uint8Array => Uint8Array.from(v);

function readBack(ram: SparseRam, addr: number, len: number): Uint8Array {
  const out = new Uint8Array(len).fill(0xee);
  ram.read(addr, out, 0, len);
  return out;
}

describe("SparseRam", () => {
  it("reads zero from untouched memory without allocating a page", () => {
    const ram = new SparseRam();
    expect(readBack(ram, 0x123456, 3 * PAGE_SIZE)).toEqual(new Uint8Array(3 * PAGE_SIZE));
    expect(ram.residentPages).toBe(0);
    expect(ram.page(5, false)).toBeNull();
    expect(ram.residentPages).toBe(0);
  });

  it("reads back what was written and allocates one page for it", () => {
    const ram = new SparseRam();
    ram.write(0x1000 + 10, bytes(1, 2, 3, 4), 0, 4);
    expect(readBack(ram, 0x1000 + 9, 6)).toEqual(bytes(0, 1, 2, 3, 4, 0));
    expect(ram.residentPages).toBe(1);
  });

  it("honours source and destination offsets", () => {
    const ram = new SparseRam();
    ram.write(100, bytes(9, 9, 5, 6, 7, 9), 2, 3);
    const out = new Uint8Array(6);
    ram.read(100, out, 1, 3);
    expect(out).toEqual(bytes(0, 5, 6, 7, 0, 0));
  });

  it("splits writes and reads across page boundaries", () => {
    const ram = new SparseRam();
    const src = Uint8Array.from({ length: 2 * PAGE_SIZE + 20 }, (_, i) => (i * 7 + 1) & 0xff);
    const addr = 3 * PAGE_SIZE - 10;
    ram.write(addr, src, 0, src.length);
    expect(readBack(ram, addr, src.length)).toEqual(src);
    expect(ram.residentPages).toBe(4); // pages 2, 3, 4 and 5
    // Bytes just outside the write stay zero.
    expect(readBack(ram, addr - 1, 1)[0]).toBe(0);
    expect(readBack(ram, addr + src.length, 1)[0]).toBe(0);
  });

  it("keeps pages apart after reading through the last-page cache", () => {
    const ram = new SparseRam();
    ram.write(0, bytes(0xaa), 0, 1);
    ram.write(PAGE_SIZE, bytes(0xbb), 0, 1);
    readBack(ram, 0, 1);
    ram.write(PAGE_SIZE + 1, bytes(0xcc), 0, 1);
    expect(readBack(ram, 0, 2)).toEqual(bytes(0xaa, 0));
    expect(readBack(ram, PAGE_SIZE, 2)).toEqual(bytes(0xbb, 0xcc));
  });

  it("fills across pages and leaves neighbours alone", () => {
    const ram = new SparseRam();
    ram.fill(PAGE_SIZE - 4, 0x5a, 8);
    expect(readBack(ram, PAGE_SIZE - 5, 10)).toEqual(bytes(0, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0));
    expect(ram.residentPages).toBe(2);
  });

  it("fills with zero without allocating, but clears what was written", () => {
    const ram = new SparseRam();
    ram.fill(0x10000, 0, 4 * PAGE_SIZE);
    expect(ram.residentPages).toBe(0);
    ram.write(0x20000, bytes(1, 2, 3), 0, 3);
    ram.fill(0x20001, 0, 1);
    expect(readBack(ram, 0x20000, 3)).toEqual(bytes(1, 0, 3));
  });

  it("stores bytes at a 64 GiB address at the cost of one page", () => {
    const ram = new SparseRam();
    const addr = 64 * 2 ** 30 - 2;
    ram.write(addr, bytes(0x11, 0x22, 0x33, 0x44), 0, 4); // straddles the 64 GiB line
    expect(readBack(ram, addr, 4)).toEqual(bytes(0x11, 0x22, 0x33, 0x44));
    expect(ram.residentPages).toBe(2);
    const high = 2 ** 47 + 5;
    ram.write(high, bytes(7), 0, 1);
    expect(readBack(ram, high, 1)[0]).toBe(7);
    expect(readBack(ram, high - 2 ** 32, 1)[0]).toBe(0); // no aliasing on 32-bit truncation
  });

  it("page(pfn, true) allocates once and returns the same page", () => {
    const ram = new SparseRam();
    const p = ram.page(3, true)!;
    expect(p.length).toBe(PAGE_SIZE);
    expect(ram.page(3, true)).toBe(p);
    ram.page(4, false);
    expect(ram.page(3, false)).toBe(p);
    expect(ram.residentPages).toBe(1);
  });
});

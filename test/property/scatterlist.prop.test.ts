/**
 * Properties of scatterlists: tables built from pages or buffers describe exactly the bytes
 * asked for, in order, with no entry longer than the segment limit; chaining never reorders,
 * loses or adds an entry.
 */

import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { bareKernel } from "../helpers/kernel.ts";
import {
  SG_MAX_SINGLE_ALLOC,
  for_each_sg,
  for_each_sgtable_sg,
  sg_alloc_table,
  sg_alloc_table_from_pages_segment,
  sg_array,
  sg_chain,
  sg_copy_from_buffer,
  sg_copy_to_buffer,
  sg_init_table,
  sg_is_chain,
  sg_nents,
  sg_set_buf,
  sg_table,
  type page,
  type scatterlist,
} from "../../kernel/include/scatterlist.ts";
import { kmalloc, virt_to_phys } from "../../kernel/mm/slab-api.ts";
import { copy_to_user } from "../../kernel/mm/access.ts";
import { GFP_KERNEL, PAGE_SIZE } from "../../kernel/include/types.ts";

/** [start, length] runs of physical bytes, adjacent runs merged. */
function runs(parts: Iterable<[number, number]>): [number, number][] {
  const out: [number, number][] = [];
  for (const [start, len] of parts) {
    if (len === 0) continue;
    const last = out[out.length - 1];
    if (last && last[0] + last[1] === start) last[1] += len;
    else out.push([start, len]);
  }
  return out;
}

/** A page list with runs of physically consecutive frames, as pinned user pages look. */
const pagesArb = fc
  .array(fc.record({ start: fc.integer({ min: 256, max: 100000 }), len: fc.integer({ min: 1, max: 6 }) }), { minLength: 1, maxLength: 8 })
  .map((rs) => rs.flatMap((r) => Array.from({ length: r.len }, (_, i): page => ({ pfn: r.start + i }))))
  .filter((ps) => new Set(ps.map((p) => p.pfn)).size === ps.length);

describe("sg_alloc_table_from_pages_segment", () => {
  it("covers exactly [offset, offset + size) of the pages, in order, with entries <= max_segment", () => {
    bareKernel("x86-coherent");
    fc.assert(
      fc.property(
        pagesArb,
        fc.integer({ min: 0, max: PAGE_SIZE - 1 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: PAGE_SIZE - 1 }),
        (pages, offset, frac, segPages, segExtra) => {
          const size = Math.floor(frac * (pages.length * PAGE_SIZE - offset));
          const max = segPages * PAGE_SIZE + segExtra;
          const t = new sg_table();
          expect(sg_alloc_table_from_pages_segment(t, pages, pages.length, offset, size, max, GFP_KERNEL)).toBe(0);
          const entries = [...for_each_sgtable_sg(t)].map(([s]) => s);
          expect(entries.length).toBe(t.orig_nents);
          for (const s of entries) expect(s.length).toBeLessThanOrEqual(segPages * PAGE_SIZE);
          expect(entries.reduce((n, s) => n + s.length, 0)).toBe(size);
          // each entry is physically contiguous by construction; compare the byte runs
          const got = runs(entries.map((s): [number, number] => [s.page!.pfn * PAGE_SIZE + s.offset, s.length]));
          const want: [number, number][] = [];
          for (let b = offset, left = size; left > 0; ) {
            const idx = Math.floor(b / PAGE_SIZE);
            const n = Math.min(left, PAGE_SIZE - (b % PAGE_SIZE));
            want.push([pages[idx].pfn * PAGE_SIZE + (b % PAGE_SIZE), n]);
            b += n;
            left -= n;
          }
          expect(got).toEqual(runs(want));
          // and the pages of each entry really are consecutive frames of the list
          for (const s of entries) {
            const first = pages.findIndex((p) => p.pfn === s.page!.pfn);
            const n = Math.ceil((s.offset + s.length) / PAGE_SIZE);
            for (let i = 1; i < n; i++) expect(pages[first + i].pfn).toBe(s.page!.pfn + i);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("sg_set_buf lists", () => {
  it("carry exactly the bytes copied in, buffer by buffer", () => {
    const { kernel: k } = bareKernel("arm64-noncoherent");
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 10 }), fc.nat(255), (sizes, seed) => {
        k.enter();
        const sg = sg_array(sizes.length);
        sg_init_table(sg, sizes.length);
        const bufs = sizes.map((n, i) => {
          const b = kmalloc(n, 0);
          sg_set_buf(sg[i], b, n);
          return b;
        });
        const total = sizes.reduce((a, b) => a + b, 0);
        const data = Uint8Array.from({ length: total }, (_, i) => (i * 31 + seed) & 0xff);
        expect(sg_copy_from_buffer(sg, sizes.length, data, total)).toBe(total);
        let off = 0;
        sizes.forEach((n, i) => {
          expect(virt_to_phys(bufs[i])).toBe(sg[i].page!.pfn * PAGE_SIZE + sg[i].offset);
          const got = new Uint8Array(n);
          copy_to_user(got, bufs[i]);
          expect(got).toEqual(data.subarray(off, off + n));
          off += n;
        });
        const back = new Uint8Array(total);
        expect(sg_copy_to_buffer(sg, sizes.length, back, total)).toBe(total);
        expect(back).toEqual(data);
        for (const b of bufs) k.slab.free(virt_to_phys(b));
      }),
      { numRuns: 50 },
    );
  });
});

describe("chaining", () => {
  it("sg_alloc_table: n entries, in order, none a link, the last one END, arrays of at most SG_MAX_SINGLE_ALLOC", () => {
    bareKernel("x86-coherent");
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), (n) => {
        const t = new sg_table();
        sg_alloc_table(t, n, GFP_KERNEL);
        const walked = [...for_each_sg(t.sgl!, n)].map(([s]) => s);
        expect(walked.length).toBe(n);
        expect(new Set(walked).size).toBe(n);
        expect(walked.some(sg_is_chain)).toBe(false);
        expect(walked[n - 1].end).toBe(true);
        expect(walked.slice(0, -1).some((s) => s.end)).toBe(false);
        expect(sg_nents(t.sgl)).toBe(n);
        for (const a of new Set(walked.map((s) => s.array))) expect(a.length).toBeLessThanOrEqual(SG_MAX_SINGLE_ALLOC);
      }),
    );
  });

  it("sg_chain of arbitrary arrays walks the data slots in order", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 2, max: 12 }), { minLength: 1, maxLength: 6 }), fc.integer({ min: 1, max: 12 }), (lens, lastLen) => {
        const arrays = [...lens, lastLen].map((n) => sg_array(n));
        arrays.forEach((a) => sg_init_table(a, a.length));
        let tag = 0;
        const expected: scatterlist[] = [];
        arrays.forEach((a, i) => {
          const data = i < arrays.length - 1 ? a.length - 1 : a.length;
          for (let j = 0; j < data; j++) {
            a[j].length = ++tag;
            expected.push(a[j]);
          }
        });
        for (let i = 0; i + 1 < arrays.length; i++) sg_chain(arrays[i], arrays[i].length, arrays[i + 1]);
        const walked = [...for_each_sg(arrays[0], 1e9)].map(([s]) => s);
        expect(walked).toEqual(expected);
        expect(walked.map((s) => s.length)).toEqual(expected.map((_, i) => i + 1));
        expect(sg_nents(arrays[0])).toBe(expected.length);
      }),
    );
  });
});

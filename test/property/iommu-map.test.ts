/**
 * Property: random map/unmap sequences on an UNMANAGED domain attached to a device agree with
 * a model (IOVA page -> physical page), both in the page tables (iommu_iova_to_phys) and in
 * what the device really reaches through its DMA port; a failing iommu_map (overlap, or a
 * page-table allocation failing midway) leaves the domain exactly as it was (rollback); and
 * after iommu_unmap returns, the device never reaches the page again, although every mapped
 * page was just read through the IOTLB (so it held the translation).
 */

import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { iommuRig } from "../unit/kernel/iommu/helpers.ts";
import { IOMMU_READ, IOMMU_WRITE, iommu_attach_device, iommu_iova_to_phys, iommu_map, iommu_paging_domain_alloc, iommu_unmap } from "../../kernel/include/iommu.ts";
import { iommu_state } from "../../kernel/iommu/iommu.ts";
import { EEXIST, ENOMEM, IS_ERR } from "../../kernel/include/errno.ts";
import { kwrite64 } from "../../kernel/mm/access.ts";
import { PAGE_OFFSET } from "../../kernel/mm/layout.ts";

const P = 4096;
const IOVA_PAGES = 48;
/** The IOVA window straddles a 2 MiB boundary, so two level-1 tables are involved. */
const IOVA_BASE = 0x4000_0000 + 2 * 1024 * 1024 - 24 * P;
const PHYS_PAGES = 32;

type Op =
  | { kind: "map"; page: number; count: number; phys: number; failAlloc: boolean }
  | { kind: "unmap"; page: number; count: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant("map" as const), page: fc.nat(IOVA_PAGES - 1), count: fc.integer({ min: 1, max: 6 }), phys: fc.nat(PHYS_PAGES - 7), failAlloc: fc.boolean() }),
  fc.record({ kind: fc.constant("unmap" as const), page: fc.nat(IOVA_PAGES - 1), count: fc.integer({ min: 1, max: 8 }) }),
);

describe("iommu_map / iommu_unmap against a model", () => {
  it("tables and device agree with the model; rollback; no stale translation after unmap", () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 25 }), (ops) => {
        const r = iommuRig("x86-iommu");
        const st = iommu_state(r.k);
        const d = iommu_paging_domain_alloc(r.dev);
        if (IS_ERR(d)) throw new Error("alloc");
        expect(iommu_attach_device(d, r.dev)).toBe(0);
        const physBase = r.k.pages.alloc(5, 0);
        // A marker in each physical page says which page the device reached.
        for (let i = 0; i < PHYS_PAGES; i++) kwrite64(PAGE_OFFSET + physBase + i * P, 0x5eed0000 + i);
        const model = new Map<number, number>();

        const check = (): void => {
          for (let p = 0; p < IOVA_PAGES; p++) {
            const iova = IOVA_BASE + p * P;
            const want = model.get(p);
            expect(iommu_iova_to_phys(d, iova + 8)).toBe(want === undefined ? 0 : physBase + want * P + 8);
            expect(r.devRead(iova)).toBe(want === undefined ? null : 0x5eed0000 + want);
          }
        };

        for (const op of ops) {
          const count = Math.min(op.count, IOVA_PAGES - op.page);
          const iova = IOVA_BASE + op.page * P;
          if (op.kind === "map") {
            const overlap = [...Array(count).keys()].some((i) => model.has(op.page + i));
            if (op.failAlloc) st.pgtables.failAllocs = 1;
            const ret = iommu_map(d, iova, physBase + op.phys * P, count * P, IOMMU_READ | IOMMU_WRITE, 0);
            const allocFailed = op.failAlloc && st.pgtables.failAllocs === 0;
            st.pgtables.failAllocs = 0;
            if (overlap) expect([-EEXIST, ...(allocFailed ? [-ENOMEM] : [])]).toContain(ret);
            else expect(ret).toBe(allocFailed ? -ENOMEM : 0);
            if (ret === 0) for (let i = 0; i < count; i++) model.set(op.page + i, op.phys + i);
          } else {
            let expected = 0;
            while (expected < count && model.has(op.page + expected)) expected++;
            expect(iommu_unmap(d, iova, count * P)).toBe(expected * P);
            for (let i = 0; i < expected; i++) model.delete(op.page + i);
          }
          check();
        }
      }),
      { seed: 4242, numRuns: 25 },
    );
  });
});

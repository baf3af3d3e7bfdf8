import { describe, expect, it } from "vitest";
import { bareKernel } from "../../../helpers/kernel.ts";
import { ioremap, iounmap, readl, wmb } from "../../../../kernel/include/io.ts";
import { kmalloc } from "../../../../kernel/include/slab.ts";
import { kread32, kwrite32 } from "../../../../kernel/include/string.ts";
import { REGION_WC, REGION_SIZE } from "../../../../kernel/mm/layout.ts";
import { virt_to_phys } from "../../../../kernel/include/slab.ts";
import { GFP_KERNEL } from "../../../../kernel/include/types.ts";
import type { phys_addr_t } from "../../../../kernel/include/types.ts";

describe("MMIO accessors", () => {
  it("reach a device register through ioremap (the PCI config window here)", () => {
    const { kernel, platform } = bareKernel("x86-coherent");
    kernel.exec.runOn(0, "process", "", "t", () => {
      const ecam = ioremap(platform.pciEcamBase as phys_addr_t, 4096);
      expect(readl(ecam)).toBe(0xffffffff); // slot 0 is empty: master abort reads all ones
      iounmap(ecam);
    });
    expect(kernel.findings.count).toBe(0);
  });

  it("turn a read of a physical hole into an oops attributed to the driver, and the simulator carries on", () => {
    const { kernel } = bareKernel("x86-coherent");
    const hole = ioremap(0xf000_0000 as phys_addr_t, 4096);
    const r = kernel.exec.runOn(0, "process", "baddrv", "probe", () => readl(hole));
    expect(r).toBeUndefined();
    const oops = kernel.findings.ofKind("oops");
    expect(oops).toHaveLength(1);
    expect(oops[0].driver).toBe("baddrv");
    expect(oops[0].message).toMatch(/bus error: MMIO read at/);
    expect(kernel.exec.runOn(0, "process", "", "after", () => 42)).toBe(42);
  });

  it("refuse plain memory accessors on MMIO and MMIO accessors on memory", () => {
    const { kernel } = bareKernel("x86-coherent");
    kernel.exec.runOn(0, "process", "", "t", () => {
      const p = kmalloc(64, GFP_KERNEL);
      expect(() => readl(p)).toThrow(/non-MMIO/);
      const io = ioremap(0xe000_0000 as phys_addr_t, 4096);
      expect(() => kread32(io)).toThrow(/MMIO address/);
    });
  });

  it("write-combined stores reach RAM only at a barrier", () => {
    const { kernel, board } = bareKernel("arm64-noncoherent");
    kernel.exec.runOn(0, "process", "", "t", () => {
      const phys = virt_to_phys(kmalloc(64, GFP_KERNEL));
      const wc = REGION_WC * REGION_SIZE + phys; // the write-combining alias of the same RAM
      const ram = (): number => {
        const b = new Uint8Array(4);
        board.map.ram.read(phys, b, 0, 4);
        return new DataView(b.buffer).getUint32(0, true);
      };
      kwrite32(wc, 0x11223344);
      expect(ram()).toBe(0);
      wmb();
      expect(ram()).toBe(0x11223344);
    });
  });
});

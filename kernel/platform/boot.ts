/**
 * Boot: bring a kernel up on a board, as start_kernel does: the core, the interrupt layer,
 * then the driver core with its buses (PCI is enumerated through the ECAM window).
 */

import type { Board } from "../../hw/machine/board.ts";
import { Platform } from "./platform.ts";
import { Kernel, type KernelOptions } from "../core/kernel.ts";
import { KERN_INFO } from "../core/printk.ts";
import { irq_init } from "../irq/irqdesc.ts";
import { driver_init } from "../base/init.ts";
import { dma_sanitizer_init } from "../dma/sanitizer/index.ts";
import { swiotlb_init } from "../dma/swiotlb.ts";
import { iommu_init } from "../iommu/init.ts";
import { dma_debug_set_options } from "../dma/debug-knobs.ts";

/**
 * boot - start a kernel on @board.
 * `checks: false` (benchmarks) boots without the coherence sanitizer and with dma-debug off
 * (`dma_debug=off`: no checks or findings, but the live-mapping table is still kept, so
 * teardown checks work). Both are on by default.
 * Returns: the kernel.
 */
export function boot(board: Board, opts: KernelOptions & { checks?: boolean } = {}): Kernel {
  const platform = new Platform(board);
  const k = new Kernel(platform, opts);
  const d = platform.desc;
  k.printk.log(KERN_INFO, `dmasim kernel, machine ${d.name} (${d.arch.kind}, seed ${board.prng.seed})`);
  for (const r of platform.ram()) {
    k.printk.log(KERN_INFO, `  node ${r.node}: [mem 0x${r.base.toString(16).padStart(16, "0")}-0x${(r.base + r.size - 1).toString(16).padStart(16, "0")}]`);
  }
  k.printk.log(KERN_INFO, `DMA is ${platform.coherentDma ? "coherent (devices snoop CPU caches)" : "non-coherent: streaming DMA needs cache maintenance"}`);
  k.printk.log(KERN_INFO, `smp: Brought up ${platform.cpus} CPU${platform.cpus > 1 ? "s" : ""}`);
  k.exec.runOn(0, "process", "", "start_kernel", () => {
    swiotlb_init(k); // mem_init: the bounce buffer pool, carved from low RAM before anyone allocates
    irq_init(k);
    iommu_init(k); // DMAR: before the buses, so every device gets its domain before a driver binds
    driver_init(k); // adding each device also gives it its IOMMU default domain
  });
  if (opts.checks !== false) dma_sanitizer_init(k);
  else dma_debug_set_options(k, { disabled: true });
  return k;
}

/** Driver-facing MMIO API (include/linux/io.h, asm/barrier.h). */
export {
  ioremap, iounmap,
  readb, readw, readl, readq, readb_relaxed, readw_relaxed, readl_relaxed, readq_relaxed,
  writeb, writew, writel, writeq, writeb_relaxed, writew_relaxed, writel_relaxed, writeq_relaxed,
  wmb, rmb, mb, dma_wmb, dma_rmb, dma_mb,
} from "../mm/io.ts";

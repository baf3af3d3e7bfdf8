/**
 * Basic kernel types. Addresses are plain numbers (safe integers), never BigInt; the two
 * address spaces a driver must not confuse are branded so mixing them does not compile.
 */

/** A CPU physical address. */
export type phys_addr_t = number & { readonly __brand: "phys_addr_t" };
/** A bus address, as programmed into a device. The CPU never dereferences one. */
export type dma_addr_t = number & { readonly __brand: "dma_addr_t" };
/** A kernel virtual address (what `void *` is in C); arithmetic on it is allowed. */
export type vaddr_t = number;
/** An MMIO cookie returned by ioremap / pci_iomap (`void __iomem *`). */
export type iomem_t = number;

export type gfp_t = number;
export const GFP_KERNEL = 0x1;
export const GFP_ATOMIC = 0x2;
export const __GFP_ZERO = 0x100;
export const __GFP_DMA32 = 0x200;

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;

export function as_phys(n: number): phys_addr_t {
  return n as phys_addr_t;
}

export function as_dma(n: number): dma_addr_t {
  return n as dma_addr_t;
}

/** DMA_BIT_MASK(n) as a bit count is what we store; this gives the highest reachable address. */
export function DMA_BIT_MASK(bits: number): number {
  return bits >= 53 ? Number.MAX_SAFE_INTEGER : 2 ** bits - 1;
}

/**
 * The kernel that is running. Driver-facing calls are free functions with Linux's signatures
 * (kmalloc, readl, dma_map_single...), so they find their kernel here. The run loop sets it
 * before every event and thread switch, so several machines can live in one process.
 */
import type { Kernel } from "./kernel.ts";

let running: Kernel | null = null;

export function current_kernel(): Kernel {
  if (!running) throw new Error("no kernel is running (boot one first)");
  return running;
}

export function set_current_kernel(k: Kernel | null): void {
  running = k;
}

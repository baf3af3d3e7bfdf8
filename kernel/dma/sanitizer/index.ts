/**
 * Turning the coherence sanitizer on, and the calls the rest of the kernel (and tests) use.
 *
 * boot() calls dma_sanitizer_init() unless the kernel is booted with `checks: false`. The
 * sanitizer then listens to the dma-debug table (mappings coming and going), to every DMA
 * port of the board (device accesses), to the memory system (dirty-line write-backs) and to
 * the kernel's CPU accessors. The accessors' observer is one process-wide slot, so it holds a
 * dispatcher that hands each access to the sanitizer of the kernel running it (several
 * machines may live in one process; a kernel booted without checks pays one comparison).
 */

import type { Kernel } from "../../core/kernel.ts";
import { current_kernel } from "../../core/current.ts";
import type { DmaPort } from "../../platform/platform.ts";
import { set_cpu_access_observer, type CpuAccessObserver } from "../../mm/access.ts";
import type { device } from "../../include/device.ts";
import { dma_state } from "../state.ts";
import { DmaSanitizer } from "./sanitizer.ts";

export { DmaSanitizer };

const sanitizers = new WeakMap<Kernel, DmaSanitizer>();
let lastKernel: Kernel | null = null;
let lastSanitizer: DmaSanitizer | null = null;

const dispatcher: CpuAccessObserver = {
  onCpuAccess(va, phys, len, isWrite, data, off) {
    const k = current_kernel();
    if (k !== lastKernel) {
      lastKernel = k;
      lastSanitizer = sanitizers.get(k) ?? null;
    }
    if (lastSanitizer !== null) lastSanitizer.onCpuAccess(va, phys, len, isWrite, data, off);
  },
};

/**
 * dma_sanitizer_init - turn the coherence sanitizer on for @k (idempotent)
 * Context: boot, or a test right after creating a kernel. Mappings already live are adopted.
 * Returns: the sanitizer.
 */
export function dma_sanitizer_init(k: Kernel): DmaSanitizer {
  const had = sanitizers.get(k);
  if (had) return had;
  const s = new DmaSanitizer(k);
  sanitizers.set(k, s);
  lastKernel = null;
  const table = dma_state(k).table;
  for (const e of table.live()) s.onAdd(e);
  table.listen(s);
  k.platform.observeDma(s);
  k.platform.observeMemory(s.effects);
  set_cpu_access_observer(dispatcher);
  return s;
}

/**
 * dma_sanitizer - the sanitizer of @k, or null when checks are off.
 * Context: any.
 */
export function dma_sanitizer(k: Kernel = current_kernel()): DmaSanitizer | null {
  return sanitizers.get(k) ?? null;
}

/**
 * dma_sanitizer_internal - run DMA-layer code that touches mapped buffers on purpose (swiotlb
 * bounce copies between the original buffer and its slot) without ownership findings.
 * The effect checks stay on: a bounce copy that reads a stale line is still reported.
 * Context: any. Returns: what @fn returns.
 */
export function dma_sanitizer_internal<T>(fn: () => T, k: Kernel = current_kernel()): T {
  const s = sanitizers.get(k);
  if (!s) return fn();
  s.internal++;
  try {
    return fn();
  } finally {
    s.internal--;
  }
}

/**
 * dma_sanitizer_attach_port - name the kernel device behind a DMA port the platform does not
 * know (a port a test builds by hand), and observe it.
 * Context: any.
 */
export function dma_sanitizer_attach_port(port: DmaPort, dev: device, k: Kernel = current_kernel()): void {
  sanitizers.get(k)?.attachPort(port, dev);
}

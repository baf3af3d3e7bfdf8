/**
 * The unbind-time kmalloc leak check (in the spirit of kmemleak, made exact by the simulator).
 *
 * kmalloc records the running driver as each object's owner and the virtual time it was
 * allocated. When a driver's last binding ends, every object it allocated since that binding
 * session began and still holds is memory nobody can free any more: a `memory-leak` finding.
 */

import type { Kernel } from "../core/kernel.ts";
import { KERN_ERR } from "../core/printk.ts";
import { PAGE_OFFSET } from "../mm/layout.ts";

/**
 * kmemleak_check_unbind - report what driver `name` allocated since `startNs` and still holds
 * @k: the kernel
 * @name: the driver (kmalloc owner)
 * @startNs: when its binding session began
 * @devices: the devices of the session, for the finding
 * Returns: the number of leaked objects reported.
 */
export function kmemleak_check_unbind(k: Kernel, name: string, startNs: number, devices: string): number {
  const leaked = k.slab.liveBy(name).filter((o) => o.timeNs >= startNs);
  const n = leaked.length;
  if (n === 0) return 0;
  const bytes = leaked.reduce((sum, o) => sum + o.size, 0);
  k.printk.log(KERN_ERR, `kmemleak: ${n} new suspected memory leak${n === 1 ? "" : "s"} (${bytes} bytes) by ${name} after unbind from ${devices}`);
  k.findings.add({
    kind: "memory-leak",
    severity: "error",
    timeNs: k.exec.now(),
    driver: name,
    device: devices,
    message: `${n} kmalloc object${n === 1 ? "" : "s"} (${bytes} bytes) allocated while ${name} was bound to ${devices} ${n === 1 ? "was" : "were"} never freed`,
    fix: "kfree() what probe allocated, or use devm_kzalloc().",
    details: { objects: n, bytes, sizes: leaked.map((o) => o.size).join(",") },
    history: leaked.map((o) => ({ timeNs: o.timeNs, op: "kmalloc", detail: `${o.size} bytes at 0x${(PAGE_OFFSET + o.phys).toString(16)}` })),
  });
  return n;
}

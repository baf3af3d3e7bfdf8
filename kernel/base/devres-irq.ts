/**
 * Managed interrupts (kernel/irq/devres.c): devm_request_irq and friends, freed by devres
 * when the driver detaches (after remove(), so the handler outlives remove's quiescing).
 *
 * After a driver crash the IRQ core has already taken the crashed driver's handlers away (its
 * own crash hook), so the release skips free_irq on a dead device instead of warning about an
 * already-free IRQ.
 */

import { current_kernel } from "../core/current.ts";
import type { device } from "../include/device.ts";
import { free_irq, request_threaded_irq, type irq_handler_t, type irq_thread_fn_t } from "../include/interrupt.ts";
import { devres_add_data, devres_release_node } from "./devres.ts";

interface irq_res {
  readonly irq: number;
  readonly dev_id: unknown;
}

/**
 * devm_request_threaded_irq - request_threaded_irq, freed when the driver detaches
 * @dev: device the interrupt belongs to
 * @irq: IRQ number (pci_irq_vector, platform_get_irq)
 * @handler: hard-IRQ handler (null: only wake the thread)
 * @thread_fn: threaded handler, or null
 * @irqflags: IRQF_* flags
 * @devname: name in /proc/interrupts (null: the device's name)
 * @dev_id: cookie passed to the handlers and to free_irq
 * Context: process (may sleep).
 * Returns: 0 or the negative errno of request_threaded_irq.
 */
export function devm_request_threaded_irq(
  dev: device,
  irq: number,
  handler: irq_handler_t | null,
  thread_fn: irq_thread_fn_t | null,
  irqflags: number,
  devname: string | null,
  dev_id: unknown,
): number {
  const rc = request_threaded_irq(irq, handler, thread_fn, irqflags, devname ?? dev.name, dev_id);
  if (rc) return rc;
  const res: irq_res = { irq, dev_id };
  devres_add_data(dev, `devm_request_irq(${irq})`, res, () => {
    if (!dev.dead) free_irq(irq, dev_id);
  });
  return 0;
}

/**
 * devm_request_irq - request_irq, freed when the driver detaches
 * Returns: 0 or a negative errno (see request_irq).
 */
export function devm_request_irq(dev: device, irq: number, handler: irq_handler_t, irqflags: number, devname: string | null, dev_id: unknown): number {
  return devm_request_threaded_irq(dev, irq, handler, null, irqflags, devname, dev_id);
}

/**
 * devm_free_irq - free a devm_request_irq interrupt before the driver detaches
 * Context: process. WARNs when (irq, dev_id) was not requested with devm_request_irq.
 */
export function devm_free_irq(dev: device, irq: number, dev_id: unknown): void {
  const found = devres_release_node(dev, (name, data) => {
    const r = data as irq_res | undefined;
    return name.startsWith("devm_request_irq(") && r?.irq === irq && r.dev_id === dev_id;
  });
  if (!found) current_kernel().warn(`devm_free_irq: IRQ ${irq} was not requested with devm_request_irq by ${dev.name}`);
}

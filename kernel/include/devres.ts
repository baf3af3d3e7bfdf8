/**
 * Driver-facing managed resources (include/linux/device/devres.h and the devm_* helpers):
 * everything acquired here is released in reverse order when probe fails or after remove().
 */
export {
  devres_add, devres_release_all, devres_count, devres_names,
  devm_add_action, devm_add_action_or_reset, devm_remove_action, devm_release_action,
  devres_open_group, devres_close_group, devres_remove_group, devres_release_group,
  devm_kmalloc, devm_kzalloc, devm_kcalloc, devm_kfree,
} from "../base/devres.ts";
export {
  devm_ioremap, devm_iounmap, devm_request_mem_region, devm_release_mem_region, devm_ioremap_resource,
} from "../base/devres-io.ts";
export { devm_request_irq, devm_request_threaded_irq, devm_free_irq } from "../base/devres-irq.ts";

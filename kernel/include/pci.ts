/**
 * Driver-facing PCI API (include/linux/pci.h, pci_regs.h).
 *
 * Async contract of registration (see kernel/base/driver.ts): pci_register_driver() starts
 * binding and returns a promise; the probes run in kernel threads while the kernel runs
 * (`await k.run()` or `await wait_for_device_probe()`), after which the promise holds 0.
 */
export {
  PCI_ANY_ID, PCI_DEVICE, PCI_SLOT, PCI_FUNC, pci_dev, pci_name, to_pci_dev, pci_set_drvdata, pci_get_drvdata,
  pci_match_id,
} from "../pci/pci-dev.ts";
export type { pci_device_id, pci_driver } from "../pci/pci-dev.ts";
export { pci_register_driver, pci_unregister_driver } from "../pci/pci-driver.ts";
export {
  pci_read_config_byte, pci_read_config_word, pci_read_config_dword,
  pci_write_config_byte, pci_write_config_word, pci_write_config_dword,
} from "../pci/access.ts";
export { pci_get_device } from "../pci/probe.ts";
export {
  pci_enable_device, pci_enable_device_mem, pcim_enable_device, pci_disable_device, pci_is_enabled,
  pci_set_master, pci_clear_master, pci_intx, pci_find_capability,
  pci_request_region, pci_release_region, pci_request_regions, pci_release_regions, pcim_request_all_regions,
  pci_resource_start, pci_resource_len, pci_resource_end, pci_resource_flags,
} from "../pci/pci.ts";
export {
  pci_iomap, pci_iomap_range, pci_iounmap, pcim_iomap, pcim_iounmap, pcim_iomap_table, pcim_iomap_regions,
  pcim_iomap_region,
} from "../pci/iomap.ts";
export {
  PCI_IRQ_INTX, PCI_IRQ_LEGACY, PCI_IRQ_MSI, PCI_IRQ_MSIX, PCI_IRQ_AFFINITY, PCI_IRQ_ALL_TYPES,
  pci_alloc_irq_vectors, pci_irq_vector, pci_free_irq_vectors, pci_enable_msi, pci_disable_msi,
} from "../pci/msi.ts";
export * from "../pci/pci-regs.ts";
export { IORESOURCE_MEM, IORESOURCE_IO, IORESOURCE_PREFETCH, IORESOURCE_MEM_64 } from "../base/resource.ts";
export { wait_for_device_probe, driver_probe_done } from "../base/driver.ts";
export { dev_err as pci_err, dev_warn as pci_warn, dev_notice as pci_notice, dev_info as pci_info, dev_dbg as pci_dbg } from "../base/dev_printk.ts";

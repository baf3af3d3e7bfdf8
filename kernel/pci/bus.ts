/**
 * The PCI bus type: matching by id_table, and the probe/remove glue between the driver core
 * and a pci_driver. probe(pdev, id) gets the matching id_table row; a positive return is
 * warned about and treated as success, as Linux's local_pci_probe does.
 */

import type { bus_type } from "../base/core.ts";
import { dev_warn } from "../base/dev_printk.ts";
import { pci_match_id, to_pci_dev, type pci_driver } from "./pci-dev.ts";

export const pci_bus_type: bus_type = {
  name: "pci",
  match(dev, drv) {
    return pci_match_id((drv as pci_driver).id_table, to_pci_dev(dev)) !== null;
  },
  async probe(dev, drv) {
    const pdev = to_pci_dev(dev);
    const pdrv = drv as pci_driver;
    pdev.driver = pdrv;
    const rc = await pdrv.probe(pdev, pci_match_id(pdrv.id_table, pdev)!);
    if (typeof rc === "number" && rc > 0) {
      dev_warn(dev, `Driver probe function unexpectedly returned ${rc}`);
      return 0;
    }
    return rc;
  },
  async remove(dev, drv) {
    const pdrv = drv as pci_driver;
    if (pdrv.remove) await pdrv.remove(to_pci_dev(dev));
  },
  unbound(dev) {
    to_pci_dev(dev).driver = null;
  },
};


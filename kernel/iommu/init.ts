/**
 * IOMMU bring-up and per-device setup (intel_iommu_init, iommu_probe_device,
 * iommu_release_device).
 *
 * Theory of operation
 * - iommu_init runs at boot before the buses are enumerated: it reads the firmware table
 *   (DMAR), installs the fault findings, and unless the policy is "off" brings the unit up
 *   and enables translation. With "off" the hardware is never touched (TE stays 0: every DMA
 *   reaches physical memory, no isolation).
 * - iommu_probe_device gives a device in the firmware's scope a group of its own and its
 *   default domain, and writes its context entry, before any driver can probe it: identity
 *   for "passthrough", DMA (strict) for "strict", DMA_FQ (lazy) for "lazy"; untrusted devices
 *   are always strict DMA domains, whatever the policy (§9.1).
 */

import type { Kernel } from "../core/kernel.ts";
import { current_kernel } from "../core/current.ts";
import { KERN_ERR, KERN_INFO } from "../core/printk.ts";
import type { device } from "../include/device.ts";
import { ENODEV, ENOMEM } from "../include/errno.ts";
import { dev_info } from "../base/dev_printk.ts";
import { to_pci_dev } from "../pci/pci-dev.ts";
import { DmarUnit } from "./dmar.ts";
import { iommu_fault_reporting_init, type IommuIrqCounters } from "./fault-report.ts";
import {
  IOMMU_DOMAIN_DMA, IOMMU_DOMAIN_DMA_FQ, IOMMU_DOMAIN_IDENTITY, __iommu_domain_alloc, iommu_domain, iommu_domain_free, iommu_state,
  type dev_iommu, type iommu_group,
} from "./iommu.ts";

/**
 * iommu_init - bring the IOMMU up according to the firmware table and policy
 * Context: boot (start_kernel, process context on CPU 0), before driver_init.
 */
export function iommu_init(k: Kernel = current_kernel()): void {
  const fw = k.platform.iommuFirmware();
  if (!fw) return;
  const st = iommu_state(k);
  st.policy = fw.policy;
  iommu_fault_reporting_init(k);
  if (fw.policy === "off") {
    k.printk.log(KERN_INFO, "IOMMU disabled", "DMAR: ");
    return;
  }
  const unit = new DmarUnit(k, fw.base, fw.irq);
  const maxRid = Math.max(0, ...fw.devices.map((d) => (d.bus === "pci" ? d.requesterId | 7 : d.requesterId)));
  if (unit.probe(maxRid) !== 0) return;
  k.subsys.set("iommu-irq", unit satisfies IommuIrqCounters);
  const irqRet = unit.enableFaults();
  if (irqRet) k.printk.log(KERN_ERR, `can't request irq ${fw.irq} for fault reporting (${irqRet})`, "DMAR: ");
  st.hw = unit;
  st.identity = new iommu_domain(IOMMU_DOMAIN_IDENTITY, st.allocDid(), null);
  if (!unit.enableTranslation()) {
    st.hw = null;
    return;
  }
  k.printk.log(KERN_INFO, "IOMMU enabled", "DMAR: ");
  const translated = fw.policy !== "passthrough";
  k.printk.log(KERN_INFO, `Default domain type: ${translated ? "Translated" : "Passthrough"}`, "iommu: ");
  if (translated) k.printk.log(KERN_INFO, `DMA domain TLB invalidation policy: ${fw.policy === "lazy" ? "lazy" : "strict"} mode`, "iommu: ");
}

/** The firmware scope entry of @dev: its requester id and trust. */
function scope_of(k: Kernel, dev: device): { rid: number; untrusted: boolean } | null {
  const fw = k.platform.iommuFirmware();
  if (!fw) return null;
  if (dev.bus === "pci") {
    const devfn = to_pci_dev(dev).devfn;
    const e = fw.devices.find((d) => d.bus === "pci" && d.slot === devfn >> 3);
    return e ? { rid: (e.requesterId & ~7) | (devfn & 7), untrusted: e.untrusted } : null;
  }
  const e = fw.devices.find((d) => d.bus === "platform" && d.name === dev.name);
  return e ? { rid: e.requesterId, untrusted: e.untrusted } : null;
}

/**
 * iommu_probe_device - give @dev its IOMMU group and default domain
 * Context: when the device is added, before any driver probes it.
 * Returns: 0 (also when already done), -ENODEV when no translating IOMMU covers @dev,
 * -ENOMEM when its default domain cannot be allocated.
 */
export function iommu_probe_device(dev: device, k: Kernel = current_kernel()): number {
  const st = iommu_state(k);
  if (dev.iommu) return 0;
  if (!st.hw) return -ENODEV;
  const scope = scope_of(k, dev);
  if (!scope) return -ENODEV;
  let domain: iommu_domain | null;
  if (st.policy === "passthrough" && !scope.untrusted) domain = st.identity!;
  else domain = __iommu_domain_alloc(k, st.policy === "lazy" && !scope.untrusted ? IOMMU_DOMAIN_DMA_FQ : IOMMU_DOMAIN_DMA);
  if (!domain) return -ENOMEM;
  const group: iommu_group = { id: st.nextGroup++, devices: [dev], default_domain: domain, domain };
  const di: dev_iommu = { requesterId: scope.rid, untrusted: scope.untrusted, group };
  dev.iommu = di;
  st.byRid.set(scope.rid, dev);
  domain._devices.add(dev);
  st.hw.attach_dev(dev, scope.rid, domain, null);
  dev_info(dev, `Adding to iommu group ${group.id}`);
  return 0;
}

/**
 * iommu_release_device - forget @dev: clear its context entry (its DMA now aborts) and free
 * its default domain. Context: after the device was removed.
 */
export function iommu_release_device(dev: device, k: Kernel = current_kernel()): void {
  const st = iommu_state(k);
  const di = dev.iommu as dev_iommu | null;
  if (!di?.group) return;
  const { group } = di;
  group.domain._devices.delete(dev);
  (st.hw as DmarUnit | null)?.clear_dev(di.requesterId);
  st.hw?.flush_all();
  st.byRid.delete(di.requesterId);
  dev.iommu = null;
  if (group.default_domain !== st.identity) {
    group.default_domain._devices.delete(dev);
    iommu_domain_free(group.default_domain);
  }
}

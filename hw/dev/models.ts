/**
 * Device model factory: the models a machine description can name, by model string.
 */

import type { DeviceContext } from "../core/device-context.ts";
import type { PciDevice } from "../bus/pci.ts";
import { EduDevice } from "./edu/edu.ts";

export interface PciModelOptions {
  name: string;
  /** The device's own DMA address width, where the model has one (edu's dma_mask). */
  dmaBits?: number;
  msi: boolean;
}

/** A PCI model plus the check that its wiring is complete (QEMU's realize). */
export interface PciModel extends PciDevice {
  realize(): void;
}

export function createPciModel(model: string, ctx: DeviceContext, opts: PciModelOptions): PciModel {
  switch (model) {
    case "edu":
      return new EduDevice(ctx, { name: opts.name, dmaBits: opts.dmaBits, msi: opts.msi });
    default:
      throw new RangeError(`unknown PCI device model "${model}"`);
  }
}

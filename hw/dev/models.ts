/**
 * Device model factory: the models a machine description can name, by model string, for each
 * bus they can sit on (`pci.devices` entries and `platform` entries).
 */

import type { DeviceContext } from "../core/device-context.ts";
import type { PciDevice } from "../bus/pci.ts";
import type { DmaPort } from "../dma/dma-port.ts";
import type { IrqLine } from "../irq/intc.ts";
import type { MmioRegion } from "../mem/mmio.ts";
import { EduDevice } from "./edu/edu.ts";
import { EduPlatformDevice, eduPlatformSizeProblem } from "./edu/edu-platform.ts";
import { DmacDevice, dmacSizeProblem } from "./dmac/dmac.ts";
import { RogueDevice } from "./rogue/rogue.ts";

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

/**
 * createPciModel - build the PCI function a `pci.devices` entry names
 * Returns: the unwired model; the board plugs it, attaches its port and line, then realizes it.
 */
export function createPciModel(model: string, ctx: DeviceContext, opts: PciModelOptions): PciModel {
  switch (model) {
    case "edu":
      return new EduDevice(ctx, { name: opts.name, dmaBits: opts.dmaBits, msi: opts.msi });
    case "rogue":
      return new RogueDevice(ctx, { name: opts.name, msi: opts.msi });
    case "dmac":
      throw new ModelConfigError("model", `the dmac is a platform device (an SoC block with no PCI function): list it under "platform", not "pci.devices"`);
    default:
      throw new RangeError(`unknown PCI device model "${model}"`);
  }
}

export interface PlatformModelOptions {
  name: string;
  /** Bytes of the MMIO window the machine file gives the device. */
  size: number;
  /** Index among the board's platform devices (keeps trace ids unique). */
  instance: number;
}

/**
 * A memory-mapped model (QEMU's SysBusDevice): one MMIO region, one wired interrupt line and a
 * DMA port, which the board sets before calling realize().
 */
export interface PlatformModel {
  readonly name: string;
  readonly region: MmioRegion;
  dma: DmaPort;
  irq: IrqLine;
  realize(): void;
  reset(): void;
}

/**
 * A machine file asks something of a model that the model cannot be (a `platform` entry's
 * size, say). The board turns it into a MachineConfigError naming the field.
 */
export class ModelConfigError extends Error {
  constructor(
    /** The entry's field at fault ("size"). */
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = "ModelConfigError";
  }
}

/**
 * createPlatformModel - build the device a `platform` entry names
 * Returns: the unwired model; the board maps its region, attaches its port and line, then
 * realizes it. Throws ModelConfigError for an entry the model cannot honour.
 */
export function createPlatformModel(model: string, ctx: DeviceContext, opts: PlatformModelOptions): PlatformModel {
  switch (model) {
    case "edu": {
      const problem = eduPlatformSizeProblem(opts.size);
      if (problem) throw new ModelConfigError("size", problem);
      return new EduPlatformDevice(ctx, { name: opts.name, size: opts.size, instance: opts.instance });
    }
    case "dmac": {
      const problem = dmacSizeProblem(opts.size);
      if (problem) throw new ModelConfigError("size", problem);
      return new DmacDevice(ctx, { name: opts.name, size: opts.size, instance: opts.instance });
    }
    case "rogue":
      throw new ModelConfigError("model", `the rogue device is a PCI function: list it under "pci.devices", not "platform"`);
    default:
      throw new RangeError(`unknown platform device model "${model}"`);
  }
}

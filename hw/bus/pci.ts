/**
 * PCI function model: configuration space, memory BARs, INTx and an MSI capability.
 *
 * Config space layout follows the PCI local bus spec for a type-0 header: IDs at 0x00, command
 * at 0x04 (bit 1 memory space, bit 2 bus master, bit 10 INTx disable), status at 0x06 (bit 3
 * interrupt status, bit 4 capability list), class code at 0x09, BARs at 0x10, capability
 * pointer at 0x34, interrupt line/pin at 0x3c. The MSI capability (64-bit, one vector) sits at
 * 0x40: control at 0x42 (bit 0 enable), address at 0x44/0x48, data at 0x4c.
 *
 * A device model extends PciDevice, declares its BARs in the constructor and calls `dmaRead`/
 * `dmaWrite` (refused unless the driver enabled bus mastering) and `raiseIrq`/`lowerIrq`, which
 * pick MSI when enabled and INTx otherwise, as QEMU's edu does.
 */

import type { DeviceContext } from "../core/device-context.ts";
import type { DmaPort } from "../dma/dma-port.ts";
import type { IrqLine } from "../irq/intc.ts";
import { MmioRegion, type AccessSize, type MmioOps } from "../mem/mmio.ts";

export const PCI_VENDOR_ID = 0x00;
export const PCI_DEVICE_ID = 0x02;
export const PCI_COMMAND = 0x04;
export const PCI_COMMAND_MEMORY = 0x2;
export const PCI_COMMAND_MASTER = 0x4;
export const PCI_COMMAND_INTX_DISABLE = 0x400;
export const PCI_STATUS = 0x06;
export const PCI_STATUS_INTERRUPT = 0x8;
export const PCI_STATUS_CAP_LIST = 0x10;
export const PCI_REVISION_ID = 0x08;
export const PCI_CLASS_PROG = 0x09;
export const PCI_BASE_ADDRESS_0 = 0x10;
export const PCI_CAPABILITY_LIST = 0x34;
export const PCI_INTERRUPT_LINE = 0x3c;
export const PCI_INTERRUPT_PIN = 0x3d;
export const PCI_CAP_ID_MSI = 0x05;
export const MSI_CAP = 0x40;
export const PCI_MSI_FLAGS = 0x02;
export const PCI_MSI_FLAGS_ENABLE = 0x1;
export const PCI_MSI_FLAGS_64BIT = 0x80;
export const PCI_MSI_ADDRESS_LO = 0x04;
export const PCI_MSI_ADDRESS_HI = 0x08;
export const PCI_MSI_DATA_64 = 0x0c;

export interface PciIdentity {
  vendor: number;
  device: number;
  revision: number;
  classCode: number; // 24-bit class/subclass/prog-if
  msi: boolean;
}

export abstract class PciDevice {
  readonly config = new Uint8Array(256);
  private readonly cfg = new DataView(this.config.buffer);
  readonly bars: (MmioRegion | null)[] = [null, null, null, null, null, null];
  private readonly barSizing = [false, false, false, false, false, false];
  /** Set by the host when the function is plugged in. */
  dma!: DmaPort;
  intx!: IrqLine;
  slot = -1;

  constructor(
    readonly name: string,
    protected readonly ctx: DeviceContext,
    id: PciIdentity,
  ) {
    this.cfg.setUint16(PCI_VENDOR_ID, id.vendor, true);
    this.cfg.setUint16(PCI_DEVICE_ID, id.device, true);
    this.config[PCI_REVISION_ID] = id.revision;
    this.config[PCI_CLASS_PROG] = id.classCode & 0xff;
    this.config[PCI_CLASS_PROG + 1] = (id.classCode >> 8) & 0xff;
    this.config[PCI_CLASS_PROG + 2] = (id.classCode >> 16) & 0xff;
    this.config[PCI_INTERRUPT_PIN] = 1; // INTA#
    if (id.msi) {
      this.cfg.setUint16(PCI_STATUS, PCI_STATUS_CAP_LIST, true);
      this.config[PCI_CAPABILITY_LIST] = MSI_CAP;
      this.config[MSI_CAP] = PCI_CAP_ID_MSI;
      this.config[MSI_CAP + 1] = 0;
      this.cfg.setUint16(MSI_CAP + PCI_MSI_FLAGS, PCI_MSI_FLAGS_64BIT, true);
    }
  }

  /** Declare a 32-bit memory BAR (size a power of two >= 16). */
  protected declareBar(index: number, region: MmioRegion): void {
    if ((region.size & (region.size - 1)) !== 0 || region.size < 16) {
      throw new RangeError(`${this.name}: BAR${index} size ${region.size} is not a power of two >= 16`);
    }
    const inner = region.ops;
    const gated: MmioOps = {
      read: (off, size) => {
        if (!this.memoryEnabled) {
          this.ctx.log.error(this.name, `read of BAR${index}+0x${off.toString(16)} with memory decoding disabled`);
          return size === 8 ? Number.MAX_SAFE_INTEGER : 2 ** (size * 8) - 1;
        }
        return inner.read(off, size);
      },
      write: (off, value, size) => {
        if (!this.memoryEnabled) {
          this.ctx.log.error(this.name, `write to BAR${index}+0x${off.toString(16)} with memory decoding disabled`);
          return;
        }
        inner.write(off, value, size);
      },
      peek: inner.peek ? (off, size) => inner.peek!(off, size) : undefined,
    };
    this.bars[index] = new MmioRegion(region.name, region.size, gated, region.validSizes);
  }

  get command(): number {
    return this.cfg.getUint16(PCI_COMMAND, true);
  }

  get memoryEnabled(): boolean {
    return (this.command & PCI_COMMAND_MEMORY) !== 0;
  }

  get busMaster(): boolean {
    return (this.command & PCI_COMMAND_MASTER) !== 0;
  }

  get msiEnabled(): boolean {
    return this.config[MSI_CAP] === PCI_CAP_ID_MSI && (this.cfg.getUint16(MSI_CAP + PCI_MSI_FLAGS, true) & PCI_MSI_FLAGS_ENABLE) !== 0;
  }

  // ------------------------------------------------------------- config space access (ECAM)

  configRead(off: number, size: AccessSize): number {
    const bar = this.barIndex(off);
    if (bar >= 0 && size === 4) {
      const r = this.bars[bar];
      if (!r) return 0;
      return this.barSizing[bar] ? ~(r.size - 1) >>> 0 : r.base >>> 0;
    }
    if (off + size > 256) return 0xffffffff;
    switch (size) {
      case 1:
        return this.config[off];
      case 2:
        return this.cfg.getUint16(off, true);
      default:
        return this.cfg.getUint32(off, true);
    }
  }

  configWrite(off: number, value: number, size: AccessSize): void {
    const bar = this.barIndex(off);
    if (bar >= 0) {
      // BARs are placed by firmware; writing all ones starts the sizing protocol, anything else ends it.
      this.barSizing[bar] = size === 4 && value >>> 0 === 0xffffffff;
      return;
    }
    // Writability is per byte: a dword write at 0x04 updates command and leaves status alone.
    const before = this.command;
    let wrote = false;
    for (let i = 0; i < size; i++) {
      if (!this.byteWritable(off + i)) continue;
      this.config[off + i] = Math.floor(value / 2 ** (8 * i)) & 0xff;
      wrote = true;
    }
    if (!wrote) {
      this.ctx.log.error(this.name, `config write to read-only offset 0x${off.toString(16)} ignored`);
      return;
    }
    if (this.config[MSI_CAP] === PCI_CAP_ID_MSI) {
      // Only the enable bit of MSI control is writable; the 64-bit capability bit stays set.
      const f = this.cfg.getUint16(MSI_CAP + PCI_MSI_FLAGS, true);
      this.cfg.setUint16(MSI_CAP + PCI_MSI_FLAGS, (f & PCI_MSI_FLAGS_ENABLE) | PCI_MSI_FLAGS_64BIT, true);
    }
    if ((before ^ this.command) & PCI_COMMAND_INTX_DISABLE || (off <= MSI_CAP + PCI_MSI_FLAGS && off + size > MSI_CAP + PCI_MSI_FLAGS)) this.updateIntx();
  }

  // ------------------------------------------------------------- for device models

  /** DMA read through the port; refused (guest error) unless bus mastering is on. */
  protected dmaRead(addr: number, dst: Uint8Array, off: number, len: number): boolean {
    if (!this.busMaster) {
      this.ctx.log.error(this.name, `DMA read at 0x${addr.toString(16)} attempted with bus mastering disabled`);
      return false;
    }
    return this.dma.read(addr, dst, off, len);
  }

  protected dmaWrite(addr: number, src: Uint8Array, off: number, len: number): boolean {
    if (!this.busMaster) {
      this.ctx.log.error(this.name, `DMA write at 0x${addr.toString(16)} attempted with bus mastering disabled`);
      return false;
    }
    return this.dma.write(addr, src, off, len);
  }

  private intxLevel = false;

  /** Assert the interrupt: an MSI message when enabled, else INTx (level). */
  protected raiseIrq(): void {
    if (this.msiEnabled) {
      this.sendMsi();
      return;
    }
    this.intxLevel = true;
    this.updateIntx();
  }

  /** Deassert INTx (MSI is edge-like and needs no deassertion). */
  protected lowerIrq(): void {
    this.intxLevel = false;
    this.updateIntx();
  }

  private sendMsi(): void {
    const lo = this.cfg.getUint32(MSI_CAP + PCI_MSI_ADDRESS_LO, true);
    const hi = this.cfg.getUint32(MSI_CAP + PCI_MSI_ADDRESS_HI, true);
    const data = this.cfg.getUint16(MSI_CAP + PCI_MSI_DATA_64, true);
    if (!this.busMaster) {
      this.ctx.log.error(this.name, "MSI not sent: bus mastering disabled");
      return;
    }
    this.dma.writeLe(hi * 0x100000000 + lo, data, 4);
  }

  private updateIntx(): void {
    const level = this.intxLevel && !(this.command & PCI_COMMAND_INTX_DISABLE) && !this.msiEnabled;
    const st = this.cfg.getUint16(PCI_STATUS, true);
    this.cfg.setUint16(PCI_STATUS, this.intxLevel ? st | PCI_STATUS_INTERRUPT : st & ~PCI_STATUS_INTERRUPT, true);
    if (this.intx) this.intx.set(level);
  }

  private barIndex(off: number): number {
    if (off < PCI_BASE_ADDRESS_0 || off >= PCI_BASE_ADDRESS_0 + 24) return -1;
    return (off - PCI_BASE_ADDRESS_0) >> 2;
  }

  private byteWritable(off: number): boolean {
    if (off >= PCI_COMMAND && off < PCI_COMMAND + 2) return true;
    if (off === PCI_INTERRUPT_LINE) return true;
    if (this.config[MSI_CAP] !== PCI_CAP_ID_MSI) return false;
    return (off >= MSI_CAP + PCI_MSI_FLAGS && off < MSI_CAP + PCI_MSI_FLAGS + 2) || (off >= MSI_CAP + PCI_MSI_ADDRESS_LO && off < MSI_CAP + PCI_MSI_DATA_64 + 2);
  }

  /** Return to power-on state (models override and call super). */
  reset(): void {
    this.cfg.setUint16(PCI_COMMAND, 0, true);
    if (this.config[MSI_CAP] === PCI_CAP_ID_MSI) this.cfg.setUint16(MSI_CAP + PCI_MSI_FLAGS, PCI_MSI_FLAGS_64BIT, true);
    this.intxLevel = false;
    this.updateIntx();
  }
}

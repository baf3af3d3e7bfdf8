/**
 * The IOMMU's fault log (SPEC.md section 6): the ring of fault records, the overflow bit, the
 * fault event control and the interrupt condition, with their registers (FSTS, FECTL,
 * FRCD_ADDR / FRCD_INFO).
 *
 * Kept apart from the model (iommu.ts) because it is cold: it runs when a translation fails and
 * when a driver services the fault interrupt. The model counts faults, tells observers and owns
 * the interrupt line; `changed` asks it to re-evaluate the line.
 */

import {
  IOMMU_FECTL_IE,
  IOMMU_FECTL_IP,
  IOMMU_FRCD_F,
  IOMMU_FRCD_PR,
  IOMMU_FRCD_REASON_SHIFT,
  IOMMU_FRCD_WNR,
  IOMMU_FSTS_FRI_SHIFT,
  IOMMU_FSTS_PFO,
  IOMMU_FSTS_PPF,
  IOMMU_NUM_FAULT_RECORDS,
  IOMMU_REG_FECTL,
  IOMMU_REG_FSTS,
  iommuFrcdAddr,
  iommuFrcdInfo,
} from "./iommu-regs.ts";
import type { RegisterFile } from "./register-file.ts";

const TWO32 = 0x100000000;
const NFR = IOMMU_NUM_FAULT_RECORDS;

export class FaultLog {
  private pfo = false;
  private fri = 0;
  private fectl = 0;
  private readonly frAddr = new Array<number>(NFR).fill(0);
  private readonly frInfoLo = new Array<number>(NFR).fill(0);
  private readonly frInfoHi = new Array<number>(NFR).fill(0);

  constructor(private readonly changed: () => void) {}

  /**
   * Record a fault in the record at FRI, or set the overflow bit when that record is still in use.
   * Returns: whether the fault was recorded (false: dropped).
   */
  record(rid: number, iova: number, isWrite: boolean, reason: number, pr: boolean, did: number): boolean {
    const recorded = !(this.frInfoLo[this.fri]! & IOMMU_FRCD_F);
    if (recorded) {
      const i = this.fri;
      this.frAddr[i] = iova;
      this.frInfoLo[i] = ((rid & 0xffff) | (reason << IOMMU_FRCD_REASON_SHIFT) | (isWrite ? IOMMU_FRCD_WNR : 0) | (pr ? IOMMU_FRCD_PR : 0)) + IOMMU_FRCD_F;
      this.frInfoHi[i] = did & 0xffff;
      this.fri = (i + 1) % NFR;
    } else {
      this.pfo = true;
    }
    return recorded;
  }

  /** The level of the fault interrupt line. */
  get irqLevel(): boolean {
    return (this.fectl & IOMMU_FECTL_IE) !== 0 && this.interruptCondition;
  }

  /** Reset values (SPEC.md section 8); the caller re-evaluates the line. */
  reset(): void {
    this.fri = this.fectl = 0;
    this.pfo = false;
    this.frAddr.fill(0);
    this.frInfoLo.fill(0);
    this.frInfoHi.fill(0);
  }

  defineRegisters(rf: RegisterFile): void {
    rf.set(IOMMU_REG_FSTS, {
      wide: false,
      read: () => [(this.pfo ? IOMMU_FSTS_PFO : 0) | (this.ppf ? IOMMU_FSTS_PPF : 0) | (this.fri << IOMMU_FSTS_FRI_SHIFT), 0],
      write: (lo) => {
        if (lo! & IOMMU_FSTS_PFO) this.pfo = false;
        this.changed();
      },
    });
    rf.set(IOMMU_REG_FECTL, {
      wide: false,
      read: () => [((this.fectl & IOMMU_FECTL_IE) | (this.interruptCondition ? IOMMU_FECTL_IP : 0)) >>> 0, 0],
      write: (lo) => {
        this.fectl = rf.reserved("FECTL", lo! & ~IOMMU_FECTL_IP, IOMMU_FECTL_IE);
        this.changed();
      },
    });
    for (let i = 0; i < NFR; i++) {
      rf.set(iommuFrcdAddr(i), rf.ro(`FRCD_ADDR(${i})`, () => this.frAddr[i]! % TWO32, true, () => Math.floor(this.frAddr[i]! / TWO32)));
      rf.set(iommuFrcdInfo(i), {
        wide: true,
        read: () => [this.frInfoLo[i]!, this.frInfoHi[i]!],
        write: (lo) => {
          if (lo !== null && lo & IOMMU_FRCD_F) this.frInfoLo[i] = 0;
          this.changed();
        },
      });
    }
  }

  private get ppf(): boolean {
    return this.frInfoLo.some((v) => (v & IOMMU_FRCD_F) !== 0);
  }

  private get interruptCondition(): boolean {
    return this.pfo || this.ppf;
  }
}

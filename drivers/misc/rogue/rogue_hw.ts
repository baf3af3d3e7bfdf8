/**
 * rogue registers as the driver declares them, from hw/dev/rogue/SPEC.md (sections 1 to 7).
 *
 * Written from the datasheet, not imported from the model: a test compares this table with the
 * model's, so a typo on either side shows up instead of passing silently on both.
 */

export const ROGUE_VENDOR = 0x1234; // SPEC §1
export const ROGUE_DEVICE = 0xbad1;
export const ROGUE_ID_SIGNATURE = 0x52470001; // SPEC §3: "RG", version 1

/** Register offsets in BAR0 (SPEC §3). */
export const REG_ID = 0x00;
export const REG_STATUS = 0x04;
export const REG_IRQ_STATUS = 0x08;
export const REG_IRQ_ENABLE = 0x0c;
export const REG_DMA_SRC = 0x10;
export const REG_DMA_DST = 0x18;
export const REG_DMA_LEN = 0x20;
export const REG_DMA_CMD = 0x24;
export const REG_ERR_COUNT = 0x28;
export const REG_ERR_ADDR = 0x30;
/** The on-device buffer, visible in BAR0 (SPEC §2, §6). */
export const ROGUE_BAR_BUF = 0x1000;
export const ROGUE_BUF_SIZE = 4096;

/** STATUS (SPEC §4.1). */
export const STATUS_BUSY = 0x1;

/** IRQ_STATUS / IRQ_ENABLE causes (SPEC §5). */
export const IRQ_DONE = 0x1;
export const IRQ_ERROR = 0x2;

/** DMA_CMD (SPEC §4.3). */
export const DMA_CMD_GO = 0x1;
export const DMA_CMD_TO_MEM = 0x2; // buffer -> memory

/** The engine drives 64 address lines (SPEC §6.2). */
export const ROGUE_DMA_BITS = 64;

export interface rogue_reg_decl {
  readonly name: string;
  readonly offset: number;
  readonly size: 4 | 8;
  readonly access: "RO" | "RW" | "RW1C";
}

/** The register map as the driver understands it (compared with the model's in a test). */
export const ROGUE_REGS: readonly rogue_reg_decl[] = [
  { name: "ID", offset: REG_ID, size: 4, access: "RO" },
  { name: "STATUS", offset: REG_STATUS, size: 4, access: "RO" },
  { name: "IRQ_STATUS", offset: REG_IRQ_STATUS, size: 4, access: "RW1C" },
  { name: "IRQ_ENABLE", offset: REG_IRQ_ENABLE, size: 4, access: "RW" },
  { name: "DMA_SRC", offset: REG_DMA_SRC, size: 8, access: "RW" },
  { name: "DMA_DST", offset: REG_DMA_DST, size: 8, access: "RW" },
  { name: "DMA_LEN", offset: REG_DMA_LEN, size: 4, access: "RW" },
  { name: "DMA_CMD", offset: REG_DMA_CMD, size: 4, access: "RW" },
  { name: "ERR_COUNT", offset: REG_ERR_COUNT, size: 4, access: "RO" },
  { name: "ERR_ADDR", offset: REG_ERR_ADDR, size: 8, access: "RO" },
];

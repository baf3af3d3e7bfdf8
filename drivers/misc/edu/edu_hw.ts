/**
 * edu registers as the driver declares them, from hw/dev/edu/SPEC.md (sections 1, 3, 4, 6).
 *
 * Written from the datasheet, not imported from the model: a test compares this table with the
 * model's, so a typo on either side shows up instead of passing silently on both.
 */

export const EDU_VENDOR = 0x1234; // SPEC §1
export const EDU_DEVICE = 0x11e8;
export const EDU_ID_SIGNATURE = 0x010000ed; // SPEC §3: major 1, minor 0, 0xed

/** Register offsets in BAR0 (SPEC §3). */
export const REG_ID = 0x00;
export const REG_LIVENESS = 0x04;
export const REG_FACTORIAL = 0x08;
export const REG_STATUS = 0x20;
export const REG_IRQ_STATUS = 0x24;
export const REG_IRQ_RAISE = 0x60;
export const REG_IRQ_ACK = 0x64;
export const REG_DMA_SRC = 0x80;
export const REG_DMA_DST = 0x88;
export const REG_DMA_COUNT = 0x90;
export const REG_DMA_CMD = 0x98;
/** First offset past the registers (SPEC §2): a register window must be at least this big. */
export const EDU_REGS_END = 0xa0;

/** STATUS bits (SPEC §4.2). */
export const STATUS_COMPUTING = 0x01;
export const STATUS_IRQ_FACT = 0x80;

/** IRQ_STATUS causes (SPEC §5). */
export const IRQ_FACT = 0x001;
export const IRQ_DMA = 0x100;

/** DMA_CMD bits (SPEC §4.3). */
export const DMA_CMD_START = 0x1;
export const DMA_CMD_TO_RAM = 0x2; // DIR = 1: edu buffer -> RAM
export const DMA_CMD_IRQ = 0x4;

/** The device-side address of the 4 KiB internal buffer (SPEC §6). */
export const EDU_BUF_ADDR = 0x40000;
export const EDU_BUF_SIZE = 4096;
export const EDU_DMA_BITS = 28;

export interface edu_reg_decl {
  readonly name: string;
  readonly offset: number;
  readonly size: 4 | 8;
  readonly access: "RO" | "RW" | "WO";
}

/** The register map as the driver understands it (compared with the model's in a test). */
export const EDU_REGS: readonly edu_reg_decl[] = [
  { name: "ID", offset: REG_ID, size: 4, access: "RO" },
  { name: "LIVENESS", offset: REG_LIVENESS, size: 4, access: "RW" },
  { name: "FACTORIAL", offset: REG_FACTORIAL, size: 4, access: "RW" },
  { name: "STATUS", offset: REG_STATUS, size: 4, access: "RW" },
  { name: "IRQ_STATUS", offset: REG_IRQ_STATUS, size: 4, access: "RO" },
  { name: "IRQ_RAISE", offset: REG_IRQ_RAISE, size: 4, access: "WO" },
  { name: "IRQ_ACK", offset: REG_IRQ_ACK, size: 4, access: "WO" },
  { name: "DMA_SRC", offset: REG_DMA_SRC, size: 8, access: "RW" },
  { name: "DMA_DST", offset: REG_DMA_DST, size: 8, access: "RW" },
  { name: "DMA_COUNT", offset: REG_DMA_COUNT, size: 8, access: "RW" },
  { name: "DMA_CMD", offset: REG_DMA_CMD, size: 8, access: "RW" },
];

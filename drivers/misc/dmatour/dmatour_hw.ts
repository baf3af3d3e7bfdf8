/**
 * The edu registers the tour driver uses, declared from hw/dev/edu/SPEC.md (sections 3, 4.3,
 * 5 and 6) by this driver, as every driver declares its own (no sharing with drivers/misc/edu).
 */

export const EDU_VENDOR = 0x1234; // SPEC §1
export const EDU_DEVICE = 0x11e8;

export const REG_IRQ_STATUS = 0x24; // SPEC §3
export const REG_IRQ_ACK = 0x64;
export const REG_DMA_SRC = 0x80;
export const REG_DMA_DST = 0x88;
export const REG_DMA_COUNT = 0x90;
export const REG_DMA_CMD = 0x98;

export const IRQ_DMA = 0x100; // SPEC §5

export const DMA_CMD_START = 0x1; // SPEC §4.3
export const DMA_CMD_TO_RAM = 0x2;
export const DMA_CMD_IRQ = 0x4;

/** The device-side address and size of the edu's internal buffer (SPEC §6). */
export const EDU_BUF_ADDR = 0x40000;
export const EDU_BUF_SIZE = 4096;
/** Address lines of the DMA engine (SPEC §6). */
export const EDU_DMA_BITS = 28;

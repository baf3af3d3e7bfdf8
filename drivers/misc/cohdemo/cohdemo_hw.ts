/**
 * The edu registers cohdemo uses, declared from hw/dev/edu/SPEC.md (sections 1, 3, 4, 6), not
 * shared with the edu driver: two drivers for one device each read the datasheet.
 */

export const COHDEMO_VENDOR = 0x1234; // SPEC §1
export const COHDEMO_DEVICE = 0x11e8;
export const COHDEMO_ID_SIGNATURE = 0x010000ed; // SPEC §3

export const REG_ID = 0x00;
export const REG_IRQ_STATUS = 0x24;
export const REG_IRQ_ACK = 0x64;
export const REG_DMA_SRC = 0x80;
export const REG_DMA_DST = 0x88;
export const REG_DMA_COUNT = 0x90;
export const REG_DMA_CMD = 0x98;

/** IRQ_STATUS cause of a finished transfer (SPEC §5). */
export const IRQ_DMA = 0x100;

/** DMA_CMD bits (SPEC §4.3). */
export const DMA_CMD_START = 0x1;
export const DMA_CMD_TO_RAM = 0x2;
export const DMA_CMD_IRQ = 0x4;

/** The engine's 4 KiB buffer as the device addresses it, and its address lines (SPEC §6). */
export const COHDEMO_BUF_ADDR = 0x40000;
export const COHDEMO_BUF_SIZE = 4096;
export const COHDEMO_DMA_BITS = 28;

/**
 * simdmac: register and descriptor definitions of the dmac controller, from its datasheet
 * (hw/dev/dmac/SPEC.md). A driver author's copy: nothing here is imported from the model.
 */

export const DRV_NAME = "dmac";

// Global registers (SPEC.md 3.1)
export const DMAC_ID = 0x000;
export const DMAC_CAPS = 0x004;
export const DMAC_CTRL = 0x008;
export const DMAC_IRQ_STATUS = 0x00c;
export const DMAC_ID_VALUE = 0x0dac0100;
export const DMAC_CTRL_ENABLE = 1 << 0;
export const DMAC_CTRL_RESET = 1 << 1;
export const CAPS_CHANNELS = (caps: number): number => caps & 0xf;
export const CAPS_PPORTS = (caps: number): number => (caps >> 4) & 0xf;
/** Registers end at the last peripheral port block; the window is at least this big. */
export const DMAC_REGS_MIN = 0x1000;

// Channel registers (SPEC.md 3.2), channel n at 0x100 + 0x40 * n
export const DMAC_CH = (n: number): number => 0x100 + 0x40 * n;
export const CH_CTRL = 0x00;
export const CH_STATUS = 0x04;
export const CH_DESC = 0x08;
export const CH_CUR_DESC = 0x10;
export const CH_RESIDUE = 0x28;
export const CH_INT_STATUS = 0x2c;
export const CH_INT_ENABLE = 0x30;
export const CH_DONE_COUNT = 0x34;
export const CH_ERR_ADDR = 0x38;

export const CTRL_EN = 1 << 0;
export const CTRL_PAUSE = 1 << 1;
export const CTRL_ABORT = 1 << 2;
export const CTRL_MODE = (m: number): number => (m & 3) << 4;
export const CTRL_BURST = (log2: number): number => (log2 & 0xf) << 8;

export const STATUS_ACTIVE = 1 << 0;
export const STATUS_PAUSED = 1 << 1;
export const STATUS_HALTED = 1 << 2;
export const STATUS_ERR = (st: number): number => (st >> 8) & 0xff;
export const ERR_WRITE = 5;

export const INT_DESC_DONE = 1 << 0;
export const INT_CHAIN_DONE = 1 << 1;
export const INT_ERROR = 1 << 2;

// Peripheral ports (SPEC.md 3.3): PP_DATA of port p is what descriptors name.
export const DMAC_PP_DATA = (p: number): number => 0x800 + 0x20 * p;

// Descriptors in memory (SPEC.md 4)
export const HW_DESC_SIZE = 32;
export const HW_DESC_ALIGN = 32;
export const HW_SRC = 0x00;
export const HW_DST = 0x08;
export const HW_LEN = 0x10;
export const HW_FLAGS = 0x14;
export const HW_NEXT = 0x18;
export const HW_MAX_LEN = 0x1000000;
export const F_LAST = 1 << 0;
export const F_IRQ = 1 << 1;
export const F_MEM2MEM = 0 << 4;
export const F_MEM2DEV = 1 << 4;
export const F_DEV2MEM = 2 << 4;

/** Default transfer mode: burst, 16 beats (1 KiB on the bus) per tenure. */
export const DEFAULT_BURST_LOG2 = 4;

/**
 * The DMA controller's register map, descriptor format and fixed timing (SPEC.md). Offsets are
 * from the start of the register window; channel registers repeat every DMAC_CH_STRIDE bytes
 * from DMAC_CH_BASE, peripheral ports every DMAC_PP_STRIDE bytes from DMAC_PP_BASE.
 */

// ---- global registers (SPEC.md section 3.1)
export const DMAC_REG_ID = 0x000;
export const DMAC_REG_CAPS = 0x004;
export const DMAC_REG_CTRL = 0x008;
export const DMAC_REG_IRQ_STATUS = 0x00c;

export const DMAC_ID_VALUE = 0x0dac0100;
export const DMAC_CAPS_CHANNELS_MASK = 0xf;
export const DMAC_CAPS_PPORTS_SHIFT = 4;
export const DMAC_CAPS_BEAT_SHIFT = 8;
export const DMAC_CTRL_ENABLE = 1 << 0;
export const DMAC_CTRL_RESET = 1 << 1;

// ---- channel registers (section 3.2), at DMAC_CH_BASE + n * DMAC_CH_STRIDE
export const DMAC_CH_BASE = 0x100;
export const DMAC_CH_STRIDE = 0x40;
export const CH_CTRL = 0x00;
export const CH_STATUS = 0x04;
export const CH_DESC = 0x08; // 64-bit
export const CH_CUR_DESC = 0x10; // 64-bit
export const CH_CUR_SRC = 0x18; // 64-bit
export const CH_CUR_DST = 0x20; // 64-bit
export const CH_RESIDUE = 0x28;
export const CH_INT_STATUS = 0x2c;
export const CH_INT_ENABLE = 0x30;
export const CH_DONE_COUNT = 0x34;
export const CH_ERR_ADDR = 0x38; // 64-bit

export const CH_CTRL_EN = 1 << 0;
export const CH_CTRL_PAUSE = 1 << 1;
export const CH_CTRL_ABORT = 1 << 2;
export const CH_CTRL_MODE_SHIFT = 4;
export const CH_CTRL_MODE_MASK = 0x3 << CH_CTRL_MODE_SHIFT;
export const CH_CTRL_BURST_SHIFT = 8;
export const CH_CTRL_BURST_MASK = 0xf << CH_CTRL_BURST_SHIFT;
/** Bits that hold state (ABORT is a command and reads 0). */
export const CH_CTRL_STORED = CH_CTRL_EN | CH_CTRL_PAUSE | CH_CTRL_MODE_MASK | CH_CTRL_BURST_MASK;
export const CH_CTRL_VALID = CH_CTRL_STORED | CH_CTRL_ABORT;
/** Largest BURST field: 2^8 = 256 beats per burst. */
export const CH_BURST_MAX_LOG2 = 8;

export const CH_MODE_BURST = 0;
export const CH_MODE_CYCLE_STEAL = 1;
export const CH_MODE_TRANSPARENT = 2;

export const CH_STATUS_ACTIVE = 1 << 0;
export const CH_STATUS_PAUSED = 1 << 1;
export const CH_STATUS_HALTED = 1 << 2;
export const CH_STATUS_ERR_SHIFT = 8;

export const CH_INT_DESC_DONE = 1 << 0;
export const CH_INT_CHAIN_DONE = 1 << 1;
export const CH_INT_ERROR = 1 << 2;
export const CH_INT_ALL = CH_INT_DESC_DONE | CH_INT_CHAIN_DONE | CH_INT_ERROR;

// Error codes in CH_STATUS[15:8] (section 7).
export const ERR_NONE = 0;
export const ERR_DESC_ALIGN = 1;
export const ERR_DESC_FETCH = 2;
export const ERR_DESC_INVALID = 3;
export const ERR_READ = 4;
export const ERR_WRITE = 5;
export const ERR_NAMES: readonly string[] = ["none", "descriptor address misaligned", "descriptor fetch bus error", "invalid descriptor", "data read bus error", "data write bus error"];

// ---- peripheral ports (section 3.3), at DMAC_PP_BASE + p * DMAC_PP_STRIDE
export const DMAC_PP_BASE = 0x800;
export const DMAC_PP_STRIDE = 0x20;
export const PP_DATA = 0x00;
export const PP_CTRL = 0x04;
export const PP_RATE = 0x08;
export const PP_LEVEL = 0x0c;
export const PP_COUNT = 0x10;
export const PP_SUM = 0x14;
export const PP_DEPTH = 0x18;

export const PP_CTRL_EN = 1 << 0;
export const PP_CTRL_SOURCE = 1 << 1;
export const PP_FIFO_DEPTH = 256;

// ---- descriptors in memory (section 4): 32 bytes, 32-byte aligned, little-endian
export const DESC_SIZE = 32;
export const DESC_ALIGN = 32;
export const DESC_SRC = 0x00;
export const DESC_DST = 0x08;
export const DESC_LEN = 0x10;
export const DESC_FLAGS = 0x14;
export const DESC_NEXT = 0x18;
export const DESC_MAX_LEN = 0x1000000; // 16 MiB

export const DESC_F_LAST = 1 << 0;
export const DESC_F_IRQ = 1 << 1;
export const DESC_F_TYPE_SHIFT = 4;
export const DESC_F_TYPE_MASK = 0x3 << DESC_F_TYPE_SHIFT;
export const DESC_F_VALID = DESC_F_LAST | DESC_F_IRQ | DESC_F_TYPE_MASK;
export const DESC_TYPE_MEM2MEM = 0;
export const DESC_TYPE_MEM2DEV = 1;
export const DESC_TYPE_DEV2MEM = 2;

// ---- configuration
export const DMAC_DEFAULT_CHANNELS = 4;
export const DMAC_MAX_CHANNELS = 8;
export const DMAC_DEFAULT_PPORTS = 4;
export const DMAC_MAX_PPORTS = 8;
/** Smallest register window a machine file may give a DMAC. */
export const DMAC_MIN_SIZE = 0x1000;
/** Bytes the controller moves per bus beat. */
export const DMAC_BEAT_BYTES = 64;
/** Largest unit (one bus tenure) in bytes: a 256-beat burst. */
export const DMAC_MAX_UNIT_BYTES = DMAC_BEAT_BYTES << CH_BURST_MAX_LOG2;

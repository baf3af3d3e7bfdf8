/**
 * edu register map, as the model sees it (SPEC.md section 3).
 *
 * Written from SPEC.md, which follows the register map of QEMU's educational PCI device. The
 * driver keeps its own copy of these numbers on purpose; a test compares `EDU_REGISTERS` with
 * the driver's table so a typo on either side cannot pass silently.
 */

// ---- identification (SPEC.md section 1)
export const EDU_VENDOR_ID = 0x1234;
export const EDU_DEVICE_ID = 0x11e8;
export const EDU_REVISION = 0x10;
/** Base class 0xff ("device does not fit any defined class"), subclass 0, prog-if 0. */
export const EDU_CLASS_CODE = 0xff0000;
/** Major 1, minor 0, then the 0xed signature byte. */
export const EDU_ID_VALUE = 0x010000ed;

// ---- BAR0 (SPEC.md section 2)
export const EDU_BAR0_SIZE = 1 << 20;

// ---- register offsets in BAR0 (SPEC.md section 3)
export const EDU_REG_ID = 0x00;
export const EDU_REG_LIVENESS = 0x04;
export const EDU_REG_FACTORIAL = 0x08;
export const EDU_REG_STATUS = 0x20;
export const EDU_REG_IRQ_STATUS = 0x24;
export const EDU_REG_IRQ_RAISE = 0x60;
export const EDU_REG_IRQ_ACK = 0x64;
export const EDU_REG_DMA_SRC = 0x80;
export const EDU_REG_DMA_DST = 0x88;
export const EDU_REG_DMA_COUNT = 0x90;
export const EDU_REG_DMA_CMD = 0x98;
/** First offset past the 64-bit DMA block (0x80..0x9f). */
export const EDU_DMA_REGS_END = 0xa0;
/** Offsets below this accept only 4-byte accesses; the DMA block also accepts 8-byte ones. */
export const EDU_WIDE_REGS_START = 0x80;

// ---- STATUS fields (SPEC.md section 4.2)
export const EDU_STATUS_COMPUTING = 0x01; // RO: a factorial is being computed
export const EDU_STATUS_IRQ_FACT = 0x80; // RW: raise IRQ_STATUS.FACT when it finishes
export const EDU_STATUS_WRITABLE = EDU_STATUS_IRQ_FACT;

// ---- IRQ_STATUS causes (SPEC.md section 5)
export const EDU_IRQ_FACT = 0x00000001;
export const EDU_IRQ_DMA = 0x00000100;

// ---- DMA_CMD fields (SPEC.md section 4.3)
export const EDU_DMA_CMD_START = 0x1;
export const EDU_DMA_CMD_DIR = 0x2; // 0: RAM -> edu buffer, 1: edu buffer -> RAM
export const EDU_DMA_CMD_IRQ = 0x4;
export const EDU_DMA_CMD_MASK = EDU_DMA_CMD_START | EDU_DMA_CMD_DIR | EDU_DMA_CMD_IRQ;

// ---- DMA engine (SPEC.md section 6)
/** Device-side address of the internal buffer, as programmed into DMA_SRC / DMA_DST. */
export const EDU_DMA_BUF_ADDR = 0x40000;
export const EDU_DMA_BUF_SIZE = 4096;
export const EDU_DEFAULT_DMA_BITS = 28;

// ---- timing (SPEC.md section 7)
export const EDU_FACTORIAL_NS = 1000;
export const EDU_DMA_SETUP_NS = 250;
export const EDU_DMA_NS_PER_BYTE = 1;

export type EduAccess = "RO" | "RW" | "WO";

export interface EduRegister {
  readonly name: string;
  readonly offset: number;
  /** Register width in bytes (the 8-byte ones also take 4-byte accesses to each half). */
  readonly size: 4 | 8;
  readonly access: EduAccess;
  /** Value a read returns after reset (0 for write-only registers). */
  readonly reset: number;
}

export const EDU_REGISTERS: readonly EduRegister[] = [
  { name: "ID", offset: EDU_REG_ID, size: 4, access: "RO", reset: EDU_ID_VALUE },
  { name: "LIVENESS", offset: EDU_REG_LIVENESS, size: 4, access: "RW", reset: 0 },
  { name: "FACTORIAL", offset: EDU_REG_FACTORIAL, size: 4, access: "RW", reset: 0 },
  { name: "STATUS", offset: EDU_REG_STATUS, size: 4, access: "RW", reset: 0 },
  { name: "IRQ_STATUS", offset: EDU_REG_IRQ_STATUS, size: 4, access: "RO", reset: 0 },
  { name: "IRQ_RAISE", offset: EDU_REG_IRQ_RAISE, size: 4, access: "WO", reset: 0 },
  { name: "IRQ_ACK", offset: EDU_REG_IRQ_ACK, size: 4, access: "WO", reset: 0 },
  { name: "DMA_SRC", offset: EDU_REG_DMA_SRC, size: 8, access: "RW", reset: 0 },
  { name: "DMA_DST", offset: EDU_REG_DMA_DST, size: 8, access: "RW", reset: 0 },
  { name: "DMA_COUNT", offset: EDU_REG_DMA_COUNT, size: 8, access: "RW", reset: 0 },
  { name: "DMA_CMD", offset: EDU_REG_DMA_CMD, size: 8, access: "RW", reset: 0 },
];

// Layout invariants, checked once at load (the BUILD_BUG_ON idea).
for (const r of EDU_REGISTERS) {
  if (r.offset % r.size !== 0) throw new Error(`edu-regs: ${r.name} is not naturally aligned`);
  if ((r.size === 8) !== (r.offset >= EDU_WIDE_REGS_START)) throw new Error(`edu-regs: ${r.name} width does not match its block`);
}
if (EDU_DMA_BUF_ADDR + EDU_DMA_BUF_SIZE > EDU_BAR0_SIZE) throw new Error("edu-regs: DMA buffer window beyond BAR0");

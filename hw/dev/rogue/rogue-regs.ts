/**
 * rogue register map, as the model sees it (SPEC.md sections 1 to 4).
 *
 * Written from SPEC.md. The driver keeps its own copy of these numbers on purpose; a test
 * compares `ROGUE_REGISTERS` with the driver's table so a typo on either side cannot pass.
 */

// ---- identification (SPEC.md section 1)
export const ROGUE_VENDOR_ID = 0x1234;
export const ROGUE_DEVICE_ID = 0xbad1;
export const ROGUE_REVISION = 0x01;
/** Base class 0x02 (network controller), subclass 0x80 (other): it passes for a plain NIC. */
export const ROGUE_CLASS_CODE = 0x028000;
/** "RG" signature, version 1. */
export const ROGUE_ID_VALUE = 0x52470001;

// ---- BAR0 (SPEC.md section 2)
export const ROGUE_BAR0_SIZE = 0x2000;

// ---- register offsets in BAR0 (SPEC.md section 3)
export const ROGUE_REG_ID = 0x00;
export const ROGUE_REG_STATUS = 0x04;
export const ROGUE_REG_IRQ_STATUS = 0x08;
export const ROGUE_REG_IRQ_ENABLE = 0x0c;
export const ROGUE_REG_DMA_SRC = 0x10;
export const ROGUE_REG_DMA_DST = 0x18;
export const ROGUE_REG_DMA_LEN = 0x20;
export const ROGUE_REG_DMA_CMD = 0x24;
export const ROGUE_REG_ERR_COUNT = 0x28;
export const ROGUE_REG_ERR_ADDR = 0x30;
/** First offset past the registers. */
export const ROGUE_REGS_END = 0x38;
/** The on-device buffer, readable and writable through BAR0 (SPEC.md section 6). */
export const ROGUE_BUF_OFFSET = 0x1000;
export const ROGUE_BUF_SIZE = 0x1000;

// ---- STATUS (SPEC.md section 4.1)
export const ROGUE_STATUS_BUSY = 0x1;

// ---- IRQ_STATUS / IRQ_ENABLE causes (SPEC.md section 5)
export const ROGUE_IRQ_DONE = 0x1;
export const ROGUE_IRQ_ERROR = 0x2;
export const ROGUE_IRQ_MASK = ROGUE_IRQ_DONE | ROGUE_IRQ_ERROR;

// ---- DMA_CMD (SPEC.md section 4.3)
export const ROGUE_CMD_GO = 0x1;
/** 0: memory -> device buffer (SRC bus address, DST buffer offset); 1: device buffer -> memory. */
export const ROGUE_CMD_TO_MEM = 0x2;
export const ROGUE_CMD_MASK = ROGUE_CMD_GO | ROGUE_CMD_TO_MEM;

// ---- timing (SPEC.md section 7)
export const ROGUE_DMA_SETUP_NS = 200;
/** Bandwidth of the engine: 2 bytes per ns (2 GB/s). */
export const ROGUE_DMA_BYTES_PER_NS = 2;

export type RogueAccess = "RO" | "RW" | "RW1C";

export interface RogueRegister {
  readonly name: string;
  readonly offset: number;
  /** Register width in bytes (the 8-byte ones also take 4-byte accesses to each half). */
  readonly size: 4 | 8;
  readonly access: RogueAccess;
  readonly reset: number;
}

export const ROGUE_REGISTERS: readonly RogueRegister[] = [
  { name: "ID", offset: ROGUE_REG_ID, size: 4, access: "RO", reset: ROGUE_ID_VALUE },
  { name: "STATUS", offset: ROGUE_REG_STATUS, size: 4, access: "RO", reset: 0 },
  { name: "IRQ_STATUS", offset: ROGUE_REG_IRQ_STATUS, size: 4, access: "RW1C", reset: 0 },
  { name: "IRQ_ENABLE", offset: ROGUE_REG_IRQ_ENABLE, size: 4, access: "RW", reset: 0 },
  { name: "DMA_SRC", offset: ROGUE_REG_DMA_SRC, size: 8, access: "RW", reset: 0 },
  { name: "DMA_DST", offset: ROGUE_REG_DMA_DST, size: 8, access: "RW", reset: 0 },
  { name: "DMA_LEN", offset: ROGUE_REG_DMA_LEN, size: 4, access: "RW", reset: 0 },
  { name: "DMA_CMD", offset: ROGUE_REG_DMA_CMD, size: 4, access: "RW", reset: 0 },
  { name: "ERR_COUNT", offset: ROGUE_REG_ERR_COUNT, size: 4, access: "RO", reset: 0 },
  { name: "ERR_ADDR", offset: ROGUE_REG_ERR_ADDR, size: 8, access: "RO", reset: 0 },
];

// Layout invariants, checked once at load (the BUILD_BUG_ON idea).
for (const r of ROGUE_REGISTERS) {
  if (r.offset % r.size !== 0) throw new Error(`rogue-regs: ${r.name} is not naturally aligned`);
  if (r.offset + r.size > ROGUE_REGS_END) throw new Error(`rogue-regs: ${r.name} beyond the register block`);
}
if (ROGUE_BUF_OFFSET + ROGUE_BUF_SIZE > ROGUE_BAR0_SIZE) throw new Error("rogue-regs: buffer beyond BAR0");

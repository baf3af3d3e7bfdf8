/**
 * IOMMU register map, context-entry and page-table-entry layouts (SPEC.md sections 1 to 6).
 *
 * The kernel's IOMMU driver keeps its own copy of these numbers, as drivers do; a test can
 * compare the two tables so a typo on either side cannot pass silently.
 */

// ---- register block (SPEC.md section 1)
export const IOMMU_MMIO_SIZE = 0x1000;
export const IOMMU_VERSION = 0x00010000;

export const IOMMU_REG_VER = 0x000;
export const IOMMU_REG_CAP = 0x008;
export const IOMMU_REG_GCMD = 0x010;
export const IOMMU_REG_GSTS = 0x014;
export const IOMMU_REG_CTX_BASE = 0x018;
export const IOMMU_REG_FSTS = 0x020;
export const IOMMU_REG_FECTL = 0x024;
export const IOMMU_REG_INV_CMD = 0x040;
export const IOMMU_REG_INV_STATUS = 0x044;
export const IOMMU_REG_INV_DID = 0x048;
export const IOMMU_REG_INV_PAGES = 0x04c;
export const IOMMU_REG_INV_ADDR = 0x050;
/** Fault record i: FRCD_ADDR at FRCD_BASE + 16*i, FRCD_INFO at +8. */
export const IOMMU_REG_FRCD_BASE = 0x200;
export const IOMMU_FRCD_STRIDE = 16;
export const IOMMU_NUM_FAULT_RECORDS = 8;
export const iommuFrcdAddr = (i: number): number => IOMMU_REG_FRCD_BASE + IOMMU_FRCD_STRIDE * i;
export const iommuFrcdInfo = (i: number): number => IOMMU_REG_FRCD_BASE + IOMMU_FRCD_STRIDE * i + 8;

// ---- CAP fields (SPEC.md section 2)
export const IOMMU_LEVELS = 4;
export const IOMMU_IOVA_BITS = 48;
export const IOMMU_CAP_SP2M = 1 << 20;

// ---- GCMD / GSTS (section 3)
export const IOMMU_GCMD_TE = 0x1;
export const IOMMU_GSTS_TES = 0x1;

// ---- CTX_BASE (section 3)
export const IOMMU_CTX_SIZE_MASK = 0xf;
export const IOMMU_CTX_ENTRY_SIZE = 16;
export const IOMMU_CTX_P = 0x1;
export const IOMMU_CTX_MODE_SHIFT = 1;
export const IOMMU_CTX_MODE_MASK = 0x3;
export const IOMMU_MODE_BLOCKED = 0;
export const IOMMU_MODE_PASSTHROUGH = 1;
export const IOMMU_MODE_TRANSLATED = 2;

// ---- page tables (section 4.1)
export const IOMMU_PAGE_SHIFT = 12;
export const IOMMU_PAGE_SIZE = 1 << IOMMU_PAGE_SHIFT;
export const IOMMU_LARGE_SHIFT = 21;
export const IOMMU_PTE_P = 0x1;
export const IOMMU_PTE_R = 0x2;
export const IOMMU_PTE_W = 0x4;
export const IOMMU_PTE_PS = 0x80;
/** ADDR field: bits 51:12. */
export const IOMMU_PTE_ADDR_LIMIT = 2 ** 52;

// ---- FSTS / FECTL (section 6)
export const IOMMU_FSTS_PFO = 0x1;
export const IOMMU_FSTS_PPF = 0x2;
export const IOMMU_FSTS_FRI_SHIFT = 8;
export const IOMMU_FECTL_IE = 0x1;
export const IOMMU_FECTL_IP = 1 << 30;

// ---- FRCD_INFO low half (section 6); the DID is bits 47:32 (the high half's low 16 bits)
export const IOMMU_FRCD_REASON_SHIFT = 16;
export const IOMMU_FRCD_WNR = 1 << 24;
export const IOMMU_FRCD_PR = 1 << 25;
export const IOMMU_FRCD_F = 2 ** 31;

// ---- invalidation (section 5)
export const IOMMU_INV_SCOPE_MASK = 0x3;
export const IOMMU_INV_GLOBAL = 1;
export const IOMMU_INV_DOMAIN = 2;
export const IOMMU_INV_RANGE = 3;
export const IOMMU_INV_IVT = 2 ** 31;
export const IOMMU_INV_STATUS_DONE = 0x1;

// ---- fault reasons (VT-d legacy codes; sections 3 and 4.2)
export const IOMMU_FR_CTX_NOT_PRESENT = 0x02;
export const IOMMU_FR_CTX_INVALID = 0x03;
export const IOMMU_FR_ADDR_WIDTH = 0x04;
export const IOMMU_FR_WRITE = 0x05;
export const IOMMU_FR_READ = 0x06;
export const IOMMU_FR_NEXT_LEVEL = 0x07;
export const IOMMU_FR_CTX_TABLE = 0x09;
export const IOMMU_FR_PTE_RESERVED = 0x0c;
export const IOMMU_FR_BLOCKED = 0x0d;

/** Reason texts as VT-d prints them (the kernel driver may reuse them for dmesg). */
export const IOMMU_FAULT_REASONS: Readonly<Record<number, string>> = {
  [IOMMU_FR_CTX_NOT_PRESENT]: "Present bit in context entry is clear",
  [IOMMU_FR_CTX_INVALID]: "Invalid context entry",
  [IOMMU_FR_ADDR_WIDTH]: "Access beyond MGAW",
  [IOMMU_FR_WRITE]: "PTE Write access is not set",
  [IOMMU_FR_READ]: "PTE Read access is not set",
  [IOMMU_FR_NEXT_LEVEL]: "Next page table ptr is invalid",
  [IOMMU_FR_CTX_TABLE]: "Context table ptr is invalid",
  [IOMMU_FR_PTE_RESERVED]: "non-zero reserved fields in PTE",
  [IOMMU_FR_BLOCKED]: "PCE for translation request specifies blocking",
};

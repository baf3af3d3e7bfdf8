/**
 * PCI configuration space layout (include/uapi/linux/pci_regs.h), the kernel's own copy,
 * written from the PCI Local Bus specification (type-0 header, capability list, MSI).
 */

export const PCI_VENDOR_ID = 0x00; // 16 bits
export const PCI_DEVICE_ID = 0x02; // 16 bits
export const PCI_COMMAND = 0x04; // 16 bits
export const PCI_COMMAND_IO = 0x1; // respond to I/O space
export const PCI_COMMAND_MEMORY = 0x2; // respond to memory space
export const PCI_COMMAND_MASTER = 0x4; // enable bus mastering
export const PCI_COMMAND_INTX_DISABLE = 0x400;
export const PCI_STATUS = 0x06; // 16 bits
export const PCI_STATUS_INTERRUPT = 0x8;
export const PCI_STATUS_CAP_LIST = 0x10;
export const PCI_CLASS_REVISION = 0x08; // high 24 bits are class, low 8 revision
export const PCI_REVISION_ID = 0x08;
export const PCI_CLASS_PROG = 0x09;
export const PCI_CLASS_DEVICE = 0x0a;
export const PCI_HEADER_TYPE = 0x0e;
export const PCI_HEADER_TYPE_MFD = 0x80;
export const PCI_BASE_ADDRESS_0 = 0x10;
export const PCI_BASE_ADDRESS_1 = 0x14;
export const PCI_BASE_ADDRESS_2 = 0x18;
export const PCI_BASE_ADDRESS_3 = 0x1c;
export const PCI_BASE_ADDRESS_4 = 0x20;
export const PCI_BASE_ADDRESS_5 = 0x24;
export const PCI_BASE_ADDRESS_SPACE_IO = 0x01;
export const PCI_BASE_ADDRESS_MEM_TYPE_MASK = 0x06;
export const PCI_BASE_ADDRESS_MEM_TYPE_64 = 0x04;
export const PCI_BASE_ADDRESS_MEM_PREFETCH = 0x08;
export const PCI_BASE_ADDRESS_MEM_MASK = 0xfffffff0;
export const PCI_SUBSYSTEM_VENDOR_ID = 0x2c;
export const PCI_SUBSYSTEM_ID = 0x2e;
export const PCI_CAPABILITY_LIST = 0x34;
export const PCI_INTERRUPT_LINE = 0x3c;
export const PCI_INTERRUPT_PIN = 0x3d;

export const PCI_CAP_LIST_ID = 0;
export const PCI_CAP_LIST_NEXT = 1;
export const PCI_CAP_ID_PM = 0x01;
export const PCI_CAP_ID_MSI = 0x05;
export const PCI_CAP_ID_EXP = 0x10;
export const PCI_CAP_ID_MSIX = 0x11;

export const PCI_MSI_FLAGS = 0x02; // 16 bits, relative to the capability
export const PCI_MSI_FLAGS_ENABLE = 0x0001;
export const PCI_MSI_FLAGS_QMASK = 0x000e; // multiple message capable
export const PCI_MSI_FLAGS_QSIZE = 0x0070; // multiple message enable
export const PCI_MSI_FLAGS_64BIT = 0x0080;
export const PCI_MSI_FLAGS_MASKBIT = 0x0100;
export const PCI_MSI_ADDRESS_LO = 0x04;
export const PCI_MSI_ADDRESS_HI = 0x08; // 64-bit capability only
export const PCI_MSI_DATA_32 = 0x08;
export const PCI_MSI_DATA_64 = 0x0c;

export const PCI_STD_NUM_BARS = 6;
/** Size of one function's configuration space through ECAM. */
export const PCI_CFG_SPACE_EXP_SIZE = 4096;

/** Config accessor status codes (PCIBIOS_*). */
export const PCIBIOS_SUCCESSFUL = 0x00;
export const PCIBIOS_DEVICE_NOT_FOUND = 0x86;
export const PCIBIOS_BAD_REGISTER_NUMBER = 0x87;

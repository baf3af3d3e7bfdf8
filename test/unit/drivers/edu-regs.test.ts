import { describe, expect, it } from "vitest";
import { EDU_REGISTERS, EDU_VENDOR_ID, EDU_DEVICE_ID, EDU_ID_VALUE, EDU_IRQ_FACT, EDU_IRQ_DMA, EDU_DMA_BUF_ADDR, EDU_DMA_BUF_SIZE, EDU_DEFAULT_DMA_BITS, EDU_STATUS_COMPUTING, EDU_STATUS_IRQ_FACT, EDU_DMA_CMD_START, EDU_DMA_CMD_DIR, EDU_DMA_CMD_IRQ } from "../../../hw/dev/edu/edu-regs.ts";
import * as drv from "../../../drivers/misc/edu/edu_hw.ts";

describe("edu register declarations", () => {
  it("the driver's register table agrees with the model's, register by register", () => {
    const model = EDU_REGISTERS.map(({ name, offset, size, access }) => ({ name, offset, size, access }));
    expect(drv.EDU_REGS.map((r) => ({ ...r }))).toEqual(model);
  });

  it("IDs, bits and the DMA window agree", () => {
    expect([drv.EDU_VENDOR, drv.EDU_DEVICE, drv.EDU_ID_SIGNATURE]).toEqual([EDU_VENDOR_ID, EDU_DEVICE_ID, EDU_ID_VALUE]);
    expect([drv.IRQ_FACT, drv.IRQ_DMA]).toEqual([EDU_IRQ_FACT, EDU_IRQ_DMA]);
    expect([drv.STATUS_COMPUTING, drv.STATUS_IRQ_FACT]).toEqual([EDU_STATUS_COMPUTING, EDU_STATUS_IRQ_FACT]);
    expect([drv.DMA_CMD_START, drv.DMA_CMD_TO_RAM, drv.DMA_CMD_IRQ]).toEqual([EDU_DMA_CMD_START, EDU_DMA_CMD_DIR, EDU_DMA_CMD_IRQ]);
    expect([drv.EDU_BUF_ADDR, drv.EDU_BUF_SIZE, drv.EDU_DMA_BITS]).toEqual([EDU_DMA_BUF_ADDR, EDU_DMA_BUF_SIZE, EDU_DEFAULT_DMA_BITS]);
  });
});

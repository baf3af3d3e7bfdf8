import { describe, expect, it } from "vitest";
import { EDU_REGISTERS, EDU_VENDOR_ID, EDU_DEVICE_ID, EDU_ID_VALUE, EDU_IRQ_DMA, EDU_DMA_BUF_ADDR, EDU_DMA_BUF_SIZE, EDU_DMA_CMD_START, EDU_DMA_CMD_DIR, EDU_DMA_CMD_IRQ } from "../../../hw/dev/edu/edu-regs.ts";
import * as drv from "../../../drivers/misc/edu_bounce/edu_bounce_hw.ts";

describe("edu_bounce register declarations", () => {
  it("agree with the model's offsets, IDs, bits and DMA window", () => {
    const off = (name: string) => EDU_REGISTERS.find((r) => r.name === name)?.offset;
    expect([drv.REG_ID, drv.REG_IRQ_STATUS, drv.REG_IRQ_ACK, drv.REG_DMA_SRC, drv.REG_DMA_DST, drv.REG_DMA_COUNT, drv.REG_DMA_CMD]).toEqual(
      ["ID", "IRQ_STATUS", "IRQ_ACK", "DMA_SRC", "DMA_DST", "DMA_COUNT", "DMA_CMD"].map(off),
    );
    expect([drv.EBOUNCE_VENDOR, drv.EBOUNCE_DEVICE, drv.EBOUNCE_ID_SIGNATURE]).toEqual([EDU_VENDOR_ID, EDU_DEVICE_ID, EDU_ID_VALUE]);
    expect(drv.IRQ_DMA).toBe(EDU_IRQ_DMA);
    expect([drv.DMA_CMD_START, drv.DMA_CMD_TO_RAM, drv.DMA_CMD_IRQ]).toEqual([EDU_DMA_CMD_START, EDU_DMA_CMD_DIR, EDU_DMA_CMD_IRQ]);
    expect([drv.EBOUNCE_BUF_ADDR, drv.EBOUNCE_BUF_SIZE]).toEqual([EDU_DMA_BUF_ADDR, EDU_DMA_BUF_SIZE]);
  });
});

import { describe, expect, it } from "vitest";
import * as M from "../../../hw/dev/rogue/rogue-regs.ts";
import * as drv from "../../../drivers/misc/rogue/rogue_hw.ts";

describe("rogue register declarations", () => {
  it("the driver's register table agrees with the model's, register by register", () => {
    const model = M.ROGUE_REGISTERS.map(({ name, offset, size, access }) => ({ name, offset, size, access }));
    expect(drv.ROGUE_REGS.map((r) => ({ ...r }))).toEqual(model);
  });

  it("IDs, bits and the buffer agree", () => {
    expect([drv.ROGUE_VENDOR, drv.ROGUE_DEVICE, drv.ROGUE_ID_SIGNATURE]).toEqual([M.ROGUE_VENDOR_ID, M.ROGUE_DEVICE_ID, M.ROGUE_ID_VALUE]);
    expect([drv.IRQ_DONE, drv.IRQ_ERROR, drv.STATUS_BUSY]).toEqual([M.ROGUE_IRQ_DONE, M.ROGUE_IRQ_ERROR, M.ROGUE_STATUS_BUSY]);
    expect([drv.DMA_CMD_GO, drv.DMA_CMD_TO_MEM]).toEqual([M.ROGUE_CMD_GO, M.ROGUE_CMD_TO_MEM]);
    expect([drv.ROGUE_BAR_BUF, drv.ROGUE_BUF_SIZE]).toEqual([M.ROGUE_BUF_OFFSET, M.ROGUE_BUF_SIZE]);
  });
});

/** Boot a bare kernel (no drivers) on a built-in profile, for kernel unit tests. */
import { Board } from "../../hw/machine/board.ts";
import { getProfile } from "../../hw/machine/profiles.ts";
import type { MachineDesc } from "../../hw/machine/schema.ts";
import { Platform } from "../../kernel/platform/platform.ts";
import { Kernel } from "../../kernel/core/kernel.ts";

export interface BareKernel {
  board: Board;
  platform: Platform;
  kernel: Kernel;
}

export function bareKernel(profile = "arm64-noncoherent", edit?: (d: MachineDesc) => void, seed = 1): BareKernel {
  const desc = getProfile(profile);
  desc.pci.devices = [];
  edit?.(desc);
  const board = new Board(desc, { seed });
  const platform = new Platform(board);
  const kernel = new Kernel(platform, { logLevel: "silent" });
  return { board, platform, kernel };
}

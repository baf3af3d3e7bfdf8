/**
 * iommu-cross-device: device A cannot reach device B's buffers, each in its own domain
 * (issue 4; reference §9.1).
 *
 * Two rogue functions (00:05.0 = A, 00:06.0 = B), both bound by the rogue driver, each with its
 * receive and transmit buffers mapped for the life of the binding. B does its legitimate work:
 * it receives a pattern into its receive buffer and sends another from its transmit buffer.
 * Then A's compromised firmware (hw/dev/rogue/SPEC.md section 8) tries to read and overwrite
 * B's buffers, at the bus addresses B's driver handed B (its IOVAs) and at their physical
 * addresses.
 *
 * No IOMMU, or policy off / passthrough: a bus address is a physical address for every device,
 * so A reads B's data and overwrites it; the sanitizer reports A touching memory no mapping of
 * A's covers (`device-access-unmapped`).
 * IOMMU translating: every access at B's physical addresses faults (A's domain maps none of
 * them). B's IOVAs mean nothing in A's domain: there they fault, unless the same number happens
 * to be one of A's own IOVAs, in which case the access reaches A's own buffer, never B's (the
 * report counts both). B's data is intact either way, and reading it back proves it.
 */

import type { Scenario, ScenarioContext } from "../sim/scenario.ts";
import type { MachineDesc } from "../hw/machine/schema.ts";
import { virt_to_phys } from "../kernel/include/slab.ts";
import type { rogue_device } from "../drivers/misc/rogue/rogue_main.ts";
import { rogue_buf_read, rogue_dma, rogue_load, rogue_peek, rogue_receive, rogue_send } from "../drivers/misc/rogue/rogue_ops.ts";
import { inProcessContext } from "../sim/driver-harness.ts";
import type { RogueDevice } from "../hw/dev/rogue/rogue.ts";
import { faultsOf, firmwareOf, iommuPattern, isolates, isolationWords, sameBytes, withRogueDriver, withRogues } from "./iommu-common.ts";

const LEN = 512;

interface Target {
  /** "rx-iova", "tx-phys"... */
  readonly name: string;
  readonly addr: number;
  /** What B's buffer holds there. */
  readonly data: Uint8Array;
  /** With an IOMMU: the same number is one of A's own IOVAs (so A may reach its own buffer). */
  readonly aliasesA: boolean;
}

function targets(a: rogue_device, b: rogue_device, rx: Uint8Array, tx: Uint8Array): Target[] {
  const pageA = new Set([a.rx_dma, a.tx_dma].map((x) => Math.floor(x / 4096)));
  const t = (name: string, addr: number, data: Uint8Array): Target => ({ name, addr, data, aliasesA: pageA.has(Math.floor(addr / 4096)) });
  return [
    t("rx-iova", b.rx_dma, rx),
    t("tx-iova", b.tx_dma, tx),
    t("rx-phys", virt_to_phys(b.rx_buf), rx),
    t("tx-phys", virt_to_phys(b.tx_buf), tx),
  ];
}

interface Tally {
  leaked: number;
  faulted: number;
  ownBuffer: number;
  writesAccepted: number;
}

/** A's firmware reads every target, then overwrites each; count what got through. */
function attack(fw: RogueDevice, list: Target[], seed: number): Tally {
  const tally: Tally = { leaked: 0, faulted: 0, ownBuffer: 0, writesAccepted: 0 };
  for (const t of list) {
    const got = fw.firmwareRead(t.addr, LEN);
    if (got === null) tally.faulted++;
    else if (sameBytes(got, t.data)) tally.leaked++;
    else tally.ownBuffer++;
  }
  for (const [i, t] of list.entries()) {
    if (fw.firmwareWrite(t.addr, iommuPattern(LEN, seed, 100 + i))) tally.writesAccepted++;
    else tally.faulted++;
  }
  return tally;
}

async function run(ctx: ScenarioContext): Promise<void> {
  const k = ctx.kernel;
  const iso = isolates(ctx.machine);
  ctx.expectFindings(iso ? "iommu-fault" : "device-access-unmapped");
  await withRogueDriver(ctx, 2, async ([a, b]) => {
    const rx = iommuPattern(LEN, ctx.seed, 10);
    const tx = iommuPattern(LEN, ctx.seed, 11);
    await inProcessContext(k, "rogue-test", async () => {
      rogue_load(b!, rx);
      ctx.check("b-receive", 0, (await rogue_receive(b!, LEN)).err);
      ctx.check("b-send", 0, await rogue_send(b!, tx));
    });
    const list = targets(a!, b!, rx, tx);
    const tally = attack(firmwareOf(ctx, a!), list, ctx.seed);
    k.enter();
    await k.run();
    let rxAfter: Uint8Array = new Uint8Array(0);
    let txAfter: Uint8Array = new Uint8Array(0);
    await inProcessContext(k, "rogue-test", async () => {
      rxAfter = rogue_buf_read(b!, true, LEN);
      // What B would transmit now: its device fetches the transmit buffer from memory. (The CPU
      // reading it would see its own cached copy on a non-coherent machine, not RAM.)
      ctx.check("b-refetch", 0, await rogue_dma(b!, b!.tx_dma, LEN, false));
      txAfter = rogue_peek(b!, LEN);
    });
    report(ctx, a!, b!, list, tally, sameBytes(rxAfter, rx) && sameBytes(txAfter, tx));
  });
}

function report(ctx: ScenarioContext, a: rogue_device, b: rogue_device, list: Target[], t: Tally, intact: boolean): void {
  const iso = isolates(ctx.machine);
  const hex = (n: number) => `0x${n.toString(16)}`;
  for (const x of list) ctx.result(`b-${x.name}`, hex(x.addr) + (iso && x.aliasesA ? " (also one of A's IOVAs)" : ""));
  ctx.result("attempts", 2 * list.length);
  ctx.result("b-bytes-leaked-reads", t.leaked);
  ctx.result("writes-accepted", t.writesAccepted);
  ctx.result("faulted", t.faulted);
  ctx.result("reached-a-own-buffer", t.ownBuffer);
  const faults = faultsOf(ctx.kernel, a.dev.name);
  ctx.result("iommu-faults-a", faults.length);
  ctx.check("b-data-intact", iso, intact);
  ctx.check("b-data-read-by-a", !iso, t.leaked > 0);
  if (iso) {
    const aliased = list.filter((x) => x.aliasesA).length;
    // Each non-aliasing target: a faulting read and a faulting write. Aliases may reach A's own memory.
    ctx.check("non-aliased-attempts-all-faulted", true, t.faulted >= 2 * (list.length - aliased));
    ctx.check("faults-logged-for-a", true, faults.length >= t.faulted);
    ctx.check("b-untouched-by-faults", 0, faultsOf(ctx.kernel, b.dev.name).length);
  } else {
    ctx.check("all-attempts-got-through", 2 * list.length, t.leaked + t.writesAccepted);
  }
}

function claim(m: MachineDesc): string {
  return isolates(m)
    ? `${isolationWords(m)}: device A's reads and writes at B's physical addresses all fault, B's IOVAs reach nothing of B's from A's domain, and B's data stays intact`
    : `${isolationWords(m)}: device A reads and overwrites device B's DMA buffers at their bus (= physical) addresses`;
}

export const iommuCrossDeviceScenario: Scenario = {
  name: "iommu-cross-device",
  summary: "device A's firmware goes after device B's DMA buffers; separate IOMMU domains keep them apart",
  defaultMachine: "x86-iommu",
  machineFor: (m) => withRogues(m, 2),
  claim,
  run,
};

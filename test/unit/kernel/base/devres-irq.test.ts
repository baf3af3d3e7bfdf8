import { describe, expect, it } from "vitest";
import { Board } from "../../../../hw/machine/board.ts";
import { getProfile } from "../../../../hw/machine/profiles.ts";
import { Platform } from "../../../../kernel/platform/platform.ts";
import { Kernel } from "../../../../kernel/core/kernel.ts";
import { EINVAL } from "../../../../kernel/include/errno.ts";
import { readl, writel } from "../../../../kernel/include/io.ts";
import { IRQ_HANDLED, IRQF_SHARED, type irqreturn_t } from "../../../../kernel/include/interrupt.ts";
import { devm_free_irq, devm_request_irq, devres_names } from "../../../../kernel/include/devres.ts";
import {
  PCI_DEVICE, PCI_IRQ_MSI, pci_alloc_irq_vectors, pci_irq_vector, pci_register_driver, pci_unregister_driver,
  pcim_enable_device, pcim_iomap, pci_set_master, type pci_dev, type pci_driver,
} from "../../../../kernel/include/pci.ts";
import { irq_core, irq_to_desc } from "../../../../kernel/irq/irqdesc.ts";
import { request_irq } from "../../../../kernel/include/interrupt.ts";

const EDU_IRQ_STATUS = 0x24;
const EDU_IRQ_RAISE = 0x60;
const EDU_IRQ_ACK = 0x64;

function boot() {
  const board = new Board(getProfile("x86-coherent"), { seed: 1 });
  const k = new Kernel(new Platform(board), { logLevel: "silent" });
  return { board, k };
}

function actions(k: Kernel, irq: number): number {
  return irq_to_desc(irq_core(k), irq)!.actions.length;
}

/** An edu driver that takes an MSI vector and a managed handler; `after` runs at the end of probe. */
interface State {
  irqs: number;
  irq: number;
  pdev?: pci_dev;
}

function eduDriver(state: State, after: (pdev: pci_dev, bar: number) => number = () => 0): pci_driver {
  return {
    name: "edu",
    id_table: [PCI_DEVICE(0x1234, 0x11e8)],
    probe(pdev) {
      state.pdev = pdev;
      pcim_enable_device(pdev);
      pci_set_master(pdev);
      const bar = pcim_iomap(pdev, 0, 0);
      pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI);
      state.irq = pci_irq_vector(pdev, 0);
      const handler = (_irq: number, _id: unknown): irqreturn_t => {
        writel(readl(bar + EDU_IRQ_STATUS), bar + EDU_IRQ_ACK);
        state.irqs++;
        return IRQ_HANDLED;
      };
      const rc = devm_request_irq(pdev.dev, state.irq, handler, 0, null, state);
      if (rc) return rc;
      return after(pdev, bar);
    },
  };
}

describe("devm_request_irq", () => {
  it("installs a handler that runs, and is freed after remove on unbind, before the MSI vector", async () => {
    const { k } = boot();
    const st: State = { irqs: 0, irq: -1 };
    const drv = eduDriver(st, (_p, bar) => (writel(1, bar + EDU_IRQ_RAISE), 0));
    void pci_register_driver(drv);
    await k.run();
    expect(st.irqs).toBe(1);
    expect(actions(k, st.irq)).toBe(1);
    expect(devres_names(st.pdev!.dev)).toContain(`devm_request_irq(${st.irq})`);
    void pci_unregister_driver(drv);
    await k.run();
    expect(actions(k, st.irq)).toBe(0);
    expect(k.warnings).toBe(0);
  });

  it("devm_free_irq frees it early; freeing an unknown one warns", async () => {
    const { k } = boot();
    const st: State = { irqs: 0, irq: -1 };
    void pci_register_driver(eduDriver(st, (pdev) => {
      devm_free_irq(pdev.dev, st.irq, st);
      devm_free_irq(pdev.dev, st.irq, st);
      return 0;
    }));
    await k.run();
    expect(actions(k, st.irq)).toBe(0);
    expect(k.warnings).toBe(1);
  });

  it("a failed request returns the error and adds no devres node", async () => {
    const { k } = boot();
    let rc = 0;
    let nodes: string[] = [];
    void pci_register_driver({
      name: "edu",
      id_table: [PCI_DEVICE(0x1234, 0x11e8)],
      probe(pdev) {
        rc = devm_request_irq(pdev.dev, 11, () => IRQ_HANDLED, IRQF_SHARED, null, null);
        nodes = devres_names(pdev.dev);
        return 0;
      },
    });
    await k.run();
    expect(rc).toBe(-EINVAL);
    expect(nodes).toEqual([]);
  });

  it("after a driver crash the handler is gone without an already-free warning", async () => {
    const { k } = boot();
    const st: State = { irqs: 0, irq: -1 };
    void pci_register_driver(eduDriver(st, () => {
      throw new Error("probe bug");
    }));
    await k.run();
    expect(k.findings.ofKind("oops")).toHaveLength(1);
    expect(actions(k, st.irq)).toBe(0);
    expect(k.warnings).toBe(0);
    expect(st.pdev!.dev.dead).toBe(true);
  });

  it("pci_free_irq_vectors with a handler still installed warns", async () => {
    const { k } = boot();
    const drv: pci_driver = {
      name: "edu",
      id_table: [PCI_DEVICE(0x1234, 0x11e8)],
      probe(pdev) {
        pcim_enable_device(pdev);
        pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI);
        return request_irq(pci_irq_vector(pdev, 0), () => IRQ_HANDLED, 0, "edu", pdev); // never freed
      },
    };
    void pci_register_driver(drv);
    await k.run();
    void pci_unregister_driver(drv);
    await k.run();
    expect(k.findings.ofKind("warn").map((f) => f.message)).toEqual([
      `pci_free_irq_vectors: IRQ ${k.platform.msiFirst} still has a handler: free_irq() it first`,
    ]);
  });
});

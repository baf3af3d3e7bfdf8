import { describe, expect, it } from "vitest";
import { InterruptController } from "../../../../hw/irq/intc.ts";
import { GuestLog } from "../../../../hw/core/guest-log.ts";

/** 16 wired lines (0..15), 8 MSI vectors (16..23), 2 CPUs; records every delivery notice. */
function intc(): { ic: InterruptController; log: GuestLog; notes: number[] } {
  const log = new GuestLog(() => 0);
  const ic = new InterruptController({ lines: 16, msiVectors: 8, cpus: 2 }, log);
  const notes: number[] = [];
  ic.onDeliverable = (cpu) => notes.push(cpu);
  return { ic, log, notes };
}

/** Take and finish the highest pending vector on `cpu`, as the CPU's interrupt entry would. */
function service(ic: InterruptController, cpu: number): number {
  const v = ic.highestPending(cpu);
  if (v >= 0) {
    ic.ack(v);
    ic.eoi(v);
  }
  return v;
}

describe("InterruptController", () => {
  it("starts with wired lines level, MSI vectors edge, everything masked and routed to CPU 0", () => {
    const { ic } = intc();
    expect(ic.vectors).toBe(24);
    expect(ic.msiFirst).toBe(16);
    expect(ic.trigger.slice(0, 16).every((t) => t === "level")).toBe(true);
    expect(ic.trigger.slice(16).every((t) => t === "edge")).toBe(true);
    expect([...ic.masked].every((m) => m === 1)).toBe(true);
    expect([...ic.affinity].every((a) => a === 0)).toBe(true);
    expect(() => ic.line(16)).toThrow(RangeError);
    expect(() => ic.line(-1)).toThrow(RangeError);
  });

  it("a level line is pending exactly while asserted", () => {
    const { ic, notes } = intc();
    const l = ic.line(3);
    ic.unmask(3);
    l.raise();
    expect(l.asserted).toBe(true);
    expect(ic.highestPending(0)).toBe(3);
    expect(notes).toEqual([0]);
    l.lower();
    expect(ic.highestPending(0)).toBe(-1);
  });

  it("an edge line latches a rising edge until acknowledged", () => {
    const { ic } = intc();
    ic.configure(4, "edge");
    ic.unmask(4);
    const l = ic.line(4);
    l.pulse();
    expect(l.asserted).toBe(false);
    expect(ic.highestPending(0)).toBe(4);
    ic.ack(4);
    expect(ic.pending[4]).toBe(0);
    ic.eoi(4);
    expect(ic.highestPending(0)).toBe(-1);
    // Holding the line high is one edge, not a stream of them.
    l.raise();
    service(ic, 0);
    expect(ic.highestPending(0)).toBe(-1);
    l.raise(); // no change: still one edge
    expect(ic.highestPending(0)).toBe(-1);
  });

  it("masking keeps the pending bit and unmasking notifies the CPU", () => {
    const { ic, notes } = intc();
    ic.configure(5, "edge");
    ic.setAffinity(5, 1);
    ic.line(5).pulse();
    expect(notes).toEqual([]); // masked: nobody told
    expect(ic.pending[5]).toBe(1);
    expect(ic.highestPending(1)).toBe(-1);
    ic.unmask(5);
    expect(notes).toEqual([1]);
    expect(ic.highestPending(1)).toBe(5);
    ic.mask(5);
    expect(ic.highestPending(1)).toBe(-1);
    expect(ic.pending[5]).toBe(1);
  });

  it("unmasking with nothing pending notifies nobody", () => {
    const { ic, notes } = intc();
    ic.unmask(2);
    expect(notes).toEqual([]);
  });

  it("an acknowledged vector is not delivered again until EOI", () => {
    const { ic, notes } = intc();
    ic.unmask(17);
    ic.raiseEdge(17);
    ic.ack(17);
    expect(ic.inService[17]).toBe(1);
    expect(ic.delivered[17]).toBe(1);
    ic.raiseEdge(17); // arrives while in service: latched, not delivered now
    expect(ic.highestPending(0)).toBe(-1);
    expect(notes).toEqual([0]);
    ic.eoi(17);
    expect(notes).toEqual([0, 0]);
    expect(ic.highestPending(0)).toBe(17);
  });

  it("a level line still asserted at EOI is pending again and notifies", () => {
    const { ic, notes } = intc();
    const l = ic.line(7);
    ic.unmask(7);
    l.raise();
    ic.ack(7);
    expect(ic.highestPending(0)).toBe(-1);
    ic.eoi(7);
    expect(notes).toEqual([0, 0]);
    expect(ic.highestPending(0)).toBe(7);
    // A storm: every EOI re-delivers while the device keeps the line up.
    for (let i = 0; i < 5; i++) expect(service(ic, 0)).toBe(7);
    expect(ic.delivered[7]).toBe(6);
    l.lower();
    expect(service(ic, 0)).toBe(-1);
  });

  it("a level line dropped before EOI is not pending after it", () => {
    const { ic, notes } = intc();
    const l = ic.line(7);
    ic.unmask(7);
    l.raise();
    ic.ack(7);
    l.lower();
    ic.eoi(7);
    expect(ic.highestPending(0)).toBe(-1);
    expect(notes).toEqual([0]);
  });

  it("delivers the lowest-numbered pending vector first", () => {
    const { ic } = intc();
    for (const v of [9, 2, 20, 5]) ic.unmask(v);
    ic.line(9).raise();
    ic.raiseEdge(20);
    ic.line(5).raise();
    ic.line(2).raise();
    ic.mask(2);
    const order: number[] = [];
    for (let v = ic.highestPending(0); v >= 0; v = ic.highestPending(0)) {
      order.push(v);
      ic.ack(v); // nested: each stays in service
    }
    expect(order).toEqual([5, 9, 20]);
  });

  it("routes each vector to its affinity CPU only", () => {
    const { ic, notes } = intc();
    ic.setAffinity(3, 1);
    ic.setAffinity(4, 3); // wraps modulo the CPU count
    ic.unmask(3);
    ic.unmask(4);
    ic.line(3).raise();
    ic.line(4).raise();
    expect(ic.affinity[4]).toBe(1);
    expect(ic.highestPending(0)).toBe(-1);
    expect(ic.highestPending(1)).toBe(3);
    expect(notes).toEqual([1, 1]);
  });

  it("raises the named MSI vector on a 4-byte write of its number to the window", () => {
    const { ic, log, notes } = intc();
    ic.unmask(18);
    ic.setAffinity(18, 1);
    ic.msiRegion.ops.write(0, 18, 4);
    expect(ic.highestPending(1)).toBe(18);
    expect(notes).toEqual([1]);
    expect(log.entries).toEqual([]);
    expect(ic.msiRegion.ops.read(0, 4)).toBe(0);
    expect(ic.msiRegion.size).toBe(0x1000);
  });

  it("logs bad MSI writes as guest errors instead of throwing", () => {
    const { ic, log } = intc();
    expect(() => {
      ic.msiRegion.ops.write(4, 18, 4); // wrong offset
      ic.msiRegion.ops.write(0, 18, 2); // wrong size
      ic.msiRegion.ops.write(0, 3, 4); // a wired line, not an MSI vector
      ic.msiRegion.ops.write(0, 24, 4); // past the last vector
    }).not.toThrow();
    expect(log.errors).toHaveLength(4);
    expect(log.errors.every((e) => e.device === "intc")).toBe(true);
    expect(log.errors[2].message).toContain("names no MSI vector");
    expect([...ic.pending].every((p) => p === 0)).toBe(true);
  });

  it("hands out wires that only report real level changes", () => {
    const { ic, notes } = intc();
    ic.unmask(1);
    const l = ic.line(1);
    l.raise();
    l.raise();
    l.set(true);
    expect(notes).toEqual([0]);
  });

  // Regression test for a bug the hw tests found (fixed).
  it("two wires on one level line act as a wired-OR", () => {
    const { ic } = intc();
    ic.unmask(6);
    const a = ic.line(6);
    const b = ic.line(6);
    a.raise();
    b.raise();
    a.lower();
    expect(ic.highestPending(0)).toBe(6);
  });
});

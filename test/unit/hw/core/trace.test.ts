import { describe, expect, it } from "vitest";
import { Trace, TRACE_PID_CPU, TRACE_PID_DEVICE, TRACE_PID_MEMORY } from "../../../../hw/core/trace.ts";

interface ChromeEvent {
  name: string;
  cat?: string;
  ph: string;
  ts: number;
  dur?: number;
  pid: number;
  tid: number;
  id?: number;
  s?: string;
  args?: Record<string, unknown>;
}

const parse = (t: Trace): ChromeEvent[] => (JSON.parse(t.toJSON()) as { traceEvents: ChromeEvent[] }).traceEvents;

/** Record the same small session into a trace. */
function record(t: Trace): void {
  const cpu0 = t.track(TRACE_PID_CPU, "cpu0");
  const dev = t.track(TRACE_PID_DEVICE, "edu");
  t.slice(cpu0, "irq", "handler", 1500, 2500, { vector: 11 });
  t.instant(dev, "dma", "start", 3000);
  t.asyncBegin(dev, "dma", "xfer", 7, 3000, { bytes: 4096 });
  t.asyncEnd(dev, "dma", "xfer", 7, 9000);
  t.counter(TRACE_PID_MEMORY, "cache", 4000, { dirty: 3, valid: 10 });
}

describe("Trace", () => {
  it("records nothing when disabled", () => {
    const t = new Trace(false);
    record(t);
    expect(t.length).toBe(0);
    // Only the process-name metadata is written.
    expect(parse(t).every((e) => e.ph === "M" && e.name === "process_name")).toBe(true);
  });

  it("writes valid JSON in object form with traceEvents", () => {
    const t = new Trace(true);
    record(t);
    const text = t.toJSON();
    const doc = JSON.parse(text) as Record<string, unknown>;
    expect(Object.keys(doc)).toEqual(["traceEvents"]);
    expect(Array.isArray(doc.traceEvents)).toBe(true);
    expect(text.startsWith('{"traceEvents":[')).toBe(true);
  });

  it("writes timestamps and durations in microseconds", () => {
    const t = new Trace(true);
    record(t);
    const ev = parse(t);
    const slice = ev.find((e) => e.ph === "X")!;
    expect(slice).toMatchObject({ name: "handler", cat: "irq", ts: 1.5, dur: 2.5, pid: TRACE_PID_CPU, args: { vector: 11 } });
    const counter = ev.find((e) => e.ph === "C")!;
    expect(counter).toMatchObject({ name: "cache", ts: 4, pid: TRACE_PID_MEMORY, args: { dirty: 3, valid: 10 } });
  });

  it("gives instants thread scope and async spans their id", () => {
    const t = new Trace(true);
    record(t);
    const ev = parse(t);
    const inst = ev.find((e) => e.ph === "i")!;
    expect(inst).toMatchObject({ name: "start", ts: 3, s: "t", pid: TRACE_PID_DEVICE });
    expect(inst.dur).toBeUndefined();
    const b = ev.find((e) => e.ph === "b")!;
    const e = ev.find((x) => x.ph === "e")!;
    expect(b).toMatchObject({ id: 7, ts: 3, args: { bytes: 4096 } });
    expect(e).toMatchObject({ id: 7, ts: 9 });
    expect(b.s).toBeUndefined();
  });

  it("names processes and threads with metadata events", () => {
    const t = new Trace(true);
    record(t);
    const ev = parse(t);
    const procs = ev.filter((e) => e.ph === "M" && e.name === "process_name").map((e) => [e.pid, e.args!.name]);
    expect(procs).toEqual([
      [TRACE_PID_CPU, "CPUs"],
      [TRACE_PID_DEVICE, "devices"],
      [TRACE_PID_MEMORY, "memory"],
    ]);
    const threads = ev.filter((e) => e.ph === "M" && e.name === "thread_name").map((e) => [e.pid, e.tid, e.args!.name]);
    expect(threads).toEqual([
      [TRACE_PID_CPU, 1, "cpu0"],
      [TRACE_PID_DEVICE, 1, "edu"],
    ]);
  });

  it("accepts custom process names", () => {
    const t = new Trace(true);
    const ev = (JSON.parse(t.toJSON({ 9: "nine" })) as { traceEvents: ChromeEvent[] }).traceEvents;
    expect(ev).toEqual([{ ph: "M", name: "process_name", pid: 9, tid: 0, ts: 0, args: { name: "nine" } }]);
  });

  it("returns the same track for the same name and numbers tids per process", () => {
    const t = new Trace(true);
    const a = t.track(1, "cpu0");
    const b = t.track(1, "cpu1");
    const c = t.track(2, "nic");
    expect(t.track(1, "cpu0")).toBe(a);
    expect([a.tid, b.tid, c.tid]).toEqual([1, 2, 1]);
    expect(t.length).toBe(3); // one thread_name each, none for the repeat
  });

  it("keeps events in recording order", () => {
    const t = new Trace(true);
    const tr = t.track(1, "x");
    t.instant(tr, "c", "later", 500);
    t.instant(tr, "c", "earlier", 100);
    const names = parse(t).filter((e) => e.ph === "i").map((e) => e.name);
    expect(names).toEqual(["later", "earlier"]);
  });

  it("produces byte-identical JSON for the same calls", () => {
    const a = new Trace(true);
    const b = new Trace(true);
    record(a);
    record(b);
    expect(a.toJSON()).toBe(b.toJSON());
  });

  it("starts recording when enabled later", () => {
    const t = new Trace(false);
    const tr = t.track(1, "cpu0");
    t.instant(tr, "c", "off", 1);
    t.enabled = true;
    t.instant(tr, "c", "on", 2);
    expect(parse(t).filter((e) => e.ph === "i").map((e) => e.name)).toEqual(["on"]);
  });
});

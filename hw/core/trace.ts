/**
 * Trace recorder: virtual-timestamped events written as Chrome / Perfetto trace JSON.
 *
 * Producers test `trace.enabled` before building an event, so a run without --trace pays one
 * property read per trace point and allocates nothing. Tracks are (process, thread) pairs:
 * process 1 holds the CPUs, process 2 the devices, process 3 memory and the interconnect.
 * Timestamps are nanoseconds internally and microseconds (fractional) in the file.
 */

export const TRACE_PID_CPU = 1;
export const TRACE_PID_DEVICE = 2;
export const TRACE_PID_MEMORY = 3;

export type TraceArgs = Record<string, string | number | boolean>;

interface TraceEvent {
  ph: "X" | "i" | "C" | "M" | "b" | "e";
  name: string;
  cat: string;
  ts: number; // ns
  dur?: number; // ns
  pid: number;
  tid: number;
  id?: number;
  args?: TraceArgs;
}

export interface TraceTrack {
  readonly pid: number;
  readonly tid: number;
}

export class Trace {
  enabled: boolean;
  private events: TraceEvent[] = [];
  private tracks = new Map<string, TraceTrack>();
  private nextTid = new Map<number, number>();

  constructor(enabled = false) {
    this.enabled = enabled;
  }

  /** A named track inside a process; the same name returns the same track. */
  track(pid: number, name: string): TraceTrack {
    const key = `${pid}/${name}`;
    let t = this.tracks.get(key);
    if (!t) {
      const tid = this.nextTid.get(pid) ?? 1;
      this.nextTid.set(pid, tid + 1);
      t = { pid, tid };
      this.tracks.set(key, t);
      if (this.enabled) this.events.push({ ph: "M", name: "thread_name", cat: "", ts: 0, pid, tid, args: { name } });
    }
    return t;
  }

  /** A slice of work on a track from `startNs` lasting `durNs`. */
  slice(track: TraceTrack, cat: string, name: string, startNs: number, durNs: number, args?: TraceArgs): void {
    if (!this.enabled) return;
    this.events.push({ ph: "X", name, cat, ts: startNs, dur: durNs, pid: track.pid, tid: track.tid, args });
  }

  /** A point event on a track. */
  instant(track: TraceTrack, cat: string, name: string, ns: number, args?: TraceArgs): void {
    if (!this.enabled) return;
    this.events.push({ ph: "i", name, cat, ts: ns, pid: track.pid, tid: track.tid, args });
  }

  /** Async (possibly overlapping) span, e.g. a DMA transfer; `id` pairs begin and end. */
  asyncBegin(track: TraceTrack, cat: string, name: string, id: number, ns: number, args?: TraceArgs): void {
    if (!this.enabled) return;
    this.events.push({ ph: "b", name, cat, ts: ns, pid: track.pid, tid: track.tid, id, args });
  }

  asyncEnd(track: TraceTrack, cat: string, name: string, id: number, ns: number, args?: TraceArgs): void {
    if (!this.enabled) return;
    this.events.push({ ph: "e", name, cat, ts: ns, pid: track.pid, tid: track.tid, id, args });
  }

  /** A counter sample; each key of `values` becomes its own counter track. */
  counter(pid: number, name: string, ns: number, values: Record<string, number>): void {
    if (!this.enabled) return;
    this.events.push({ ph: "C", name, cat: "counter", ts: ns, pid, tid: 0, args: values });
  }

  get length(): number {
    return this.events.length;
  }

  /** The trace as Chrome trace-event JSON (object form, traceEvents first). */
  toJSON(processNames: Record<number, string> = defaultProcessNames()): string {
    const out: string[] = [];
    for (const [pid, name] of Object.entries(processNames)) {
      out.push(JSON.stringify({ ph: "M", name: "process_name", pid: Number(pid), tid: 0, ts: 0, args: { name } }));
    }
    for (const e of this.events) out.push(JSON.stringify(toChrome(e)));
    return `{"traceEvents":[\n${out.join(",\n")}\n]}\n`;
  }
}

function defaultProcessNames(): Record<number, string> {
  return { [TRACE_PID_CPU]: "CPUs", [TRACE_PID_DEVICE]: "devices", [TRACE_PID_MEMORY]: "memory" };
}

function toChrome(e: TraceEvent): Record<string, unknown> {
  const o: Record<string, unknown> = { name: e.name, cat: e.cat, ph: e.ph, ts: e.ts / 1000, pid: e.pid, tid: e.tid };
  if (e.dur !== undefined) o.dur = e.dur / 1000;
  if (e.id !== undefined) o.id = e.id;
  if (e.ph === "i") o.s = "t";
  if (e.args) o.args = e.args;
  return o;
}

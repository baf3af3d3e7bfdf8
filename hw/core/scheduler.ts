/**
 * Virtual time and the one event queue.
 *
 * Time is an integer count of nanoseconds. Events are ordered by (time, sequence): two events
 * due at the same instant run in the order they were scheduled, so a run is a pure function of
 * its inputs and seed. The queue is a binary heap of event records; cancelling marks a record
 * dead and the heap drops it lazily when it reaches the top.
 */

export type EventCallback = () => void;

export interface ScheduledEvent {
  readonly time: number;
  readonly seq: number;
  readonly name: string;
  callback: EventCallback | null; // null once cancelled or run
}

export class Scheduler {
  private nowNs = 0;
  private nextSeq = 0;
  private heap: ScheduledEvent[] = [];
  private live = 0;
  /** Events executed since construction (a cheap progress counter for benchmarks and stats). */
  executed = 0;

  get now(): number {
    return this.nowNs;
  }

  /** Number of events still pending (cancelled ones excluded). */
  get pending(): number {
    return this.live;
  }

  /** Schedule `cb` to run `delayNs` after now (0 = later in this instant, after what is queued). */
  after(delayNs: number, name: string, cb: EventCallback): ScheduledEvent {
    if (!(delayNs >= 0) || !Number.isFinite(delayNs)) {
      throw new RangeError(`Scheduler.after: delay must be a finite number >= 0, got ${delayNs}`);
    }
    return this.at(this.nowNs + Math.round(delayNs), name, cb);
  }

  /** Schedule `cb` at absolute time `timeNs` (never in the past). */
  at(timeNs: number, name: string, cb: EventCallback): ScheduledEvent {
    if (!Number.isFinite(timeNs)) throw new RangeError(`Scheduler.at: time must be finite, got ${timeNs}`);
    if (timeNs < this.nowNs) {
      throw new RangeError(`Scheduler.at: ${timeNs} ns is in the past (now ${this.nowNs} ns)`);
    }
    const ev: ScheduledEvent = { time: timeNs, seq: this.nextSeq++, name, callback: cb };
    this.push(ev);
    this.live++;
    return ev;
  }

  /** Cancel a pending event. Cancelling one that already ran or was cancelled is harmless. */
  cancel(ev: ScheduledEvent | null | undefined): void {
    if (ev && ev.callback) {
      ev.callback = null;
      this.live--;
    }
  }

  /** Time of the next live event, or Infinity when idle. */
  peekTime(): number {
    this.dropDead();
    return this.heap.length ? this.heap[0].time : Infinity;
  }

  /** Run the next live event; returns false when the queue is empty. */
  step(): boolean {
    this.dropDead();
    const ev = this.popTop();
    if (!ev) return false;
    const cb = ev.callback!;
    ev.callback = null;
    this.live--;
    this.nowNs = ev.time;
    this.executed++;
    cb();
    return true;
  }

  /**
   * Run `fn` with the clock reading `timeNs` (never earlier than now), then put it back.
   * A CPU runs ahead of the event clock by the time its code has charged; when that code pokes
   * a device, the device must see the CPU's time, so what it schedules starts from there.
   */
  runAt<T>(timeNs: number, fn: () => T): T {
    const saved = this.enterTime(timeNs);
    try {
      return fn();
    } finally {
      this.leaveTime(saved);
    }
  }

  /** The closure-free form of runAt for hot paths: returns the time to restore with leaveTime. */
  enterTime(timeNs: number): number {
    const saved = this.nowNs;
    if (timeNs > saved) this.nowNs = timeNs;
    return saved;
  }

  leaveTime(saved: number): void {
    this.nowNs = saved;
  }

  /** Run events until none are left or `maxEvents` ran; returns the number run. */
  runUntilIdle(maxEvents = Infinity): number {
    let n = 0;
    while (n < maxEvents && this.step()) n++;
    return n;
  }

  /** Run every event due up to now + `ns`, then set the clock to exactly now + `ns`. */
  runFor(ns: number): void {
    if (!(ns >= 0) || !Number.isFinite(ns)) throw new RangeError(`Scheduler.runFor: duration must be a finite number >= 0, got ${ns}`);
    const end = this.nowNs + ns;
    while (this.peekTime() <= end) this.step();
    this.nowNs = end;
  }

  /** Advance the clock to `timeNs` without running anything; only valid when nothing is due before it. */
  advanceTo(timeNs: number): void {
    if (timeNs < this.nowNs) throw new RangeError(`advanceTo: ${timeNs} is in the past`);
    if (this.peekTime() < timeNs) throw new RangeError(`advanceTo: events are due before ${timeNs}`);
    this.nowNs = timeNs;
  }

  private dropDead(): void {
    while (this.heap.length && this.heap[0].callback === null) this.popTop();
  }

  private push(ev: ScheduledEvent): void {
    const h = this.heap;
    let i = h.length;
    h.push(ev);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(ev, h[p])) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = ev;
  }

  private popTop(): ScheduledEvent | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0];
    const last = h.pop()!;
    if (h.length) {
      let i = 0;
      const n = h.length;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && before(h[r], h[l]) ? r : l;
        if (!before(h[c], last)) break;
        h[i] = h[c];
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}

function before(a: ScheduledEvent, b: ScheduledEvent): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}

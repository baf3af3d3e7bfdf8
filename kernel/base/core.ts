/**
 * The driver core (drivers/base/dd.c, bus.c, driver.c): buses, devices, drivers and binding.
 *
 * Theory of operation
 * - A bus (PCI, platform) registers a `bus_type` with match/probe/remove. Devices are added to
 *   a bus by enumeration; drivers by registration. Whenever both sides of a match exist, the
 *   core probes: it sets dev.driver, calls the bus's probe (which calls the driver's), and on
 *   success the device is bound. On failure (negative errno) it releases the device's devres
 *   in reverse order and forgets the driver; -EPROBE_DEFER puts the device on the deferred
 *   list, retried after the next successful bind.
 * - Probe and remove may sleep (wait_for_completion, msleep), so every bind and unbind runs in
 *   a kernel thread, serialised by one sleeping core lock (Linux's device_lock, made global:
 *   simpler, and deterministic). A call from host code (tests, CLI) spawns the thread and
 *   returns a promise that settles once the run loop (`k.run()`) has run it; a call from
 *   inside a kernel thread runs inline in that thread, so kernel code may await it.
 * - Unbind: remove(), then devres_release_all(), then dev.driver = NULL, then the unbind hooks
 *   (dma-debug reports leaked mappings there), then the kmalloc leak check.
 * - A driver that oopses (an exception in probe, remove, an IRQ handler...) is not trusted
 *   again: its devices are unbound WITHOUT calling remove(), their devres is released, they are
 *   marked dead, and the driver binds nothing more.
 * - Leak check: kmalloc records the running driver as owner. While a driver has at least one
 *   binding (a "session"), what it allocates belongs to those bindings; when its last binding
 *   ends, anything it allocated since the session began and still holds is a memory-leak finding.
 */

import { iommu_probe_device, iommu_release_device } from "../iommu/init.ts";
import type { Kernel } from "../core/kernel.ts";
import type { KThread } from "../core/sched.ts";
import { current_kernel } from "../core/current.ts";
import { KERN_ERR } from "../core/printk.ts";
import type { device, device_driver } from "../include/device.ts";
import { EBUSY, ENODEV, ENXIO, EPROBE_DEFER } from "../include/errno.ts";
import { devres_count, devres_names, devres_release_all } from "./devres.ts";
import { dev_dbg, dev_err, dev_WARN } from "./dev_printk.ts";
import { kmemleak_check_unbind } from "./kmemleak.ts";

/** struct bus_type: how a bus matches, probes and removes its devices. */
export interface bus_type {
  readonly name: "pci" | "platform";
  match(dev: device, drv: device_driver): boolean;
  /** Call the driver's probe; 0 or a negative errno (may sleep). */
  probe(dev: device, drv: device_driver): number | void | Promise<number | void>;
  remove(dev: device, drv: device_driver): void | Promise<void>;
  /** Forget bus-side binding state (pdev.driver...) after a failed probe, a remove or a crash. */
  unbound?(dev: device): void;
}

/** Why a binding ended: the driver's remove ran, its probe failed, or it crashed. */
export type unbind_reason = "remove" | "probe-failed" | "crash";
/** Called after a device lost its driver, once its devres has been released. */
export type unbind_hook = (dev: device, driver_name: string, reason: unbind_reason) => void;

type DevState = "unbound" | "probing" | "bound" | "removing";

interface DeviceRecord {
  readonly dev: device;
  readonly bus: bus_type;
  state: DevState;
  drv: DriverRecord | null;
  crashed: boolean;
  deferred: boolean;
}

interface Session {
  readonly startNs: number;
  readonly devices: Set<string>;
  crashed: boolean;
}

interface DriverRecord {
  readonly drv: device_driver;
  readonly bus: bus_type;
  registered: boolean;
  crashed: boolean;
  active: number;
  session: Session | null;
}

export interface device_summary {
  name: string;
  bus: string;
  driver: string | null;
  state: DevState;
  dead: boolean;
  devres: number;
  devres_names: string[];
}

export interface driver_summary {
  name: string;
  bus: string;
  bound: string[];
  crashed: boolean;
}

export interface driver_core_summary_t {
  devices: device_summary[];
  drivers: driver_summary[];
  /** Bind/unbind operations not finished yet (0 once wait_for_device_probe returns). */
  pending: number;
}

/** A sleeping mutex for kernel threads (block/wake, never a host await). */
class CoreLock {
  holder: KThread | null = null;
  private readonly waiters: KThread[] = [];

  constructor(private readonly k: Kernel) {}

  async lock(me: KThread): Promise<void> {
    while (this.holder) {
      this.waiters.push(me);
      await this.k.exec.block();
    }
    this.holder = me;
  }

  unlock(): void {
    this.holder = null;
    const t = this.waiters.shift();
    if (t) this.k.exec.wake(t);
  }
}

export class DriverCore {
  readonly devices: DeviceRecord[] = [];
  readonly drivers: DriverRecord[] = [];
  private readonly hooks: unbind_hook[] = [];
  private readonly lock: CoreLock;
  pending = 0;

  constructor(private readonly k: Kernel) {
    this.lock = new CoreLock(k);
    k.onCrash((owner) => this.onCrash(owner));
  }

  // ------------------------------------------------------------ operations

  /** Run `work` under the core lock: inline in the calling kernel thread, else in a new one. */
  op(name: string, owner: string, work: () => Promise<void>): Promise<void> {
    const ex = this.k.exec;
    // Inline only for code really running in a thread (not host code reacting to a promise
    // while the run loop is between a thread's end and its bookkeeping).
    if (ex.thread?.state === "running" && ex.context === "process") {
      this.pending++;
      return this.locked(ex.thread, work).finally(() => this.pending--);
    }
    return this.spawnOp(name, owner, work);
  }

  /** Run `work` under the core lock in a new kernel thread on CPU 0. */
  spawnOp(name: string, owner: string, work: () => Promise<void>): Promise<void> {
    this.pending++;
    return new Promise((resolve) => {
      this.k.exec.spawn(name, 0, owner, async () => {
        try {
          await this.locked(this.k.exec.thread!, work);
        } finally {
          this.pending--;
          resolve();
        }
      });
    });
  }

  private async locked(me: KThread, work: () => Promise<void>): Promise<void> {
    if (this.lock.holder === me) return work(); // nested: e.g. a probe registering a sub-driver
    await this.lock.lock(me);
    try {
      await work();
    } finally {
      this.lock.unlock();
    }
  }

  // ------------------------------------------------------------ devices and drivers

  /**
   * Add a device; if a driver may match, probe it in a new kernel thread. Always a new thread,
   * never inline: a probe adding a child device holds the core lock, so the child is probed
   * right after the parent's probe returns (nothing to await, so nothing can deadlock).
   */
  addDevice(dev: device, bus: bus_type): void {
    // Its IOMMU group and default domain first (Linux: iommu_probe_device from the bus
    // notifier), so no driver ever sees the device without them; devices hot-plugged after
    // boot included.
    iommu_probe_device(dev, this.k);
    const rec: DeviceRecord = { dev, bus, state: "unbound", drv: null, crashed: false, deferred: false };
    this.devices.push(rec);
    if (!this.drivers.some((d) => d.bus === bus && d.registered)) return;
    void this.spawnOp(`probe:${dev.name}`, "", () => this.attachAny(rec));
  }

  removeDevice(dev: device): Promise<void> {
    const rec = this.record(dev);
    if (!rec) return Promise.resolve();
    return this.op(`remove:${dev.name}`, rec.drv?.drv.name ?? "", async () => {
      await this.unbind(rec);
      this.devices.splice(this.devices.indexOf(rec), 1);
      iommu_release_device(dev, this.k);
    });
  }

  releaseDevice(dev: device): Promise<void> {
    const rec = this.record(dev);
    if (!rec) return Promise.resolve();
    return this.op(`unbind:${dev.name}`, rec.drv?.drv.name ?? "", () => this.unbind(rec));
  }

  registerDriver(drv: device_driver, bus: bus_type): Promise<number> {
    if (this.drivers.some((d) => d.registered && d.bus === bus && d.drv.name === drv.name)) {
      this.k.printk.log(KERN_ERR, `Error: Driver '${drv.name}' is already registered, aborting...`);
      return Promise.resolve(-EBUSY);
    }
    const d: DriverRecord = { drv, bus, registered: true, crashed: false, active: 0, session: null };
    this.drivers.push(d);
    return this.op(`probe:${drv.name}`, drv.name, async () => {
      for (const rec of this.devices) if (rec.bus === bus) await this.attach(rec, d);
    }).then(() => 0);
  }

  unregisterDriver(drv: device_driver): Promise<void> {
    const d = this.drivers.find((r) => r.drv === drv && r.registered);
    if (!d) {
      this.k.warn(`Unexpected driver unregister! (${drv.name})`);
      return Promise.resolve();
    }
    d.registered = false;
    return this.op(`remove:${drv.name}`, drv.name, async () => {
      for (const rec of [...this.devices]) if (rec.drv === d) await this.unbind(rec);
      this.drivers.splice(this.drivers.indexOf(d), 1);
    });
  }

  onUnbind(hook: unbind_hook): () => void {
    this.hooks.push(hook);
    return () => {
      const i = this.hooks.indexOf(hook);
      if (i >= 0) this.hooks.splice(i, 1);
    };
  }

  record(dev: device): DeviceRecord | undefined {
    return this.devices.find((r) => r.dev === dev);
  }

  // ------------------------------------------------------------ binding

  private async attachAny(rec: DeviceRecord): Promise<void> {
    for (const d of this.drivers) {
      if (d.bus === rec.bus && (await this.attach(rec, d))) return;
    }
  }

  private async attach(rec: DeviceRecord, d: DriverRecord): Promise<boolean> {
    if (rec.state !== "unbound" || rec.dev.dead || !d.registered || d.crashed) return false;
    if (!d.bus.match(rec.dev, d.drv)) return false;
    return this.probe(rec, d);
  }

  private async probe(rec: DeviceRecord, d: DriverRecord): Promise<boolean> {
    const { dev } = rec;
    rec.state = "probing";
    rec.drv = d;
    rec.deferred = false;
    dev.driver = d.drv;
    this.sessionBegin(d, dev);
    let ret = await this.callDriver(d, "probe", dev, () => d.bus.probe(dev, d.drv));
    if (ret !== null && (typeof ret !== "number" || !Number.isInteger(ret))) {
      dev_WARN(dev, `probe of ${d.drv.name} returned ${String(ret)} instead of 0 or a negative errno`);
      ret = 0;
    }
    if (ret === 0 && !rec.crashed) {
      rec.state = "bound";
      dev_dbg(dev, `bound to driver ${d.drv.name}`);
      this.triggerDeferred();
      return true;
    }
    if (!rec.crashed) this.logProbeFailure(dev, d.drv.name, ret as number);
    this.detach(rec, d, rec.crashed ? "crash" : "probe-failed");
    if (ret === -EPROBE_DEFER && !dev.dead) rec.deferred = true;
    return false;
  }

  private logProbeFailure(dev: device, name: string, ret: number): void {
    if (ret === -EPROBE_DEFER) dev_dbg(dev, `Driver ${name} requests probe deferral`);
    else if (ret === -ENODEV || ret === -ENXIO) dev_dbg(dev, `probe with driver ${name} rejects match ${ret}`);
    else dev_err(dev, `probe with driver ${name} failed with error ${ret}`);
  }

  private async unbind(rec: DeviceRecord): Promise<void> {
    if (rec.state !== "bound") return;
    const d = rec.drv!;
    rec.state = "removing";
    if (!rec.crashed) await this.callDriver(d, "remove", rec.dev, () => d.bus.remove(rec.dev, d.drv));
    this.detach(rec, d, rec.crashed ? "crash" : "remove");
  }

  /** End a binding: devres, driver pointer, bus state, hooks, leak check. */
  private detach(rec: DeviceRecord, d: DriverRecord, reason: unbind_reason): void {
    const { dev } = rec;
    if (reason === "crash") {
      dev.dead = true;
      dev_err(dev, `driver ${d.drv.name} crashed: device unbound without calling remove(), releasing its managed resources`);
    }
    this.asOwner(d.drv.name, () => devres_release_all(dev));
    dev.driver = null;
    dev.driver_data = null;
    rec.bus.unbound?.(dev);
    rec.state = "unbound";
    rec.drv = null;
    for (const h of [...this.hooks]) {
      try {
        h(dev, d.drv.name, reason);
      } catch (err) {
        this.k.oops(err, "driver unbind notifier", "");
      }
    }
    this.sessionEnd(d, dev, reason);
  }

  /** Call driver code as its owner (kmalloc attribution, oops blame); an exception is an oops. */
  private async callDriver(d: DriverRecord, what: string, dev: device, fn: () => unknown): Promise<unknown> {
    const ex = this.k.exec;
    const t = ex.thread!;
    const prev = t.owner;
    t.owner = ex.owner = d.drv.name;
    try {
      return await fn();
    } catch (err) {
      this.k.oops(err, `${what} of ${dev.name}`, d.drv.name);
      return null;
    } finally {
      t.owner = ex.owner = prev;
    }
  }

  private asOwner(owner: string, fn: () => void): void {
    const ex = this.k.exec;
    const t = ex.thread;
    const prev = ex.owner;
    if (t) t.owner = owner;
    ex.owner = owner;
    try {
      fn();
    } finally {
      if (t) t.owner = prev;
      ex.owner = prev;
    }
  }

  private triggerDeferred(): void {
    if (!this.devices.some((r) => r.deferred)) return;
    void this.spawnOp("deferred_probe", "", async () => {
      for (const rec of this.devices) {
        if (!rec.deferred) continue;
        rec.deferred = false;
        await this.attachAny(rec);
      }
    });
  }

  // ------------------------------------------------------------ crashes and leaks

  private onCrash(owner: string): void {
    for (const d of this.drivers) if (d.drv.name === owner) d.crashed = true;
    for (const rec of this.devices) {
      if (rec.drv?.drv.name !== owner || rec.crashed) continue;
      rec.crashed = true;
      rec.dev.dead = true;
      // Probing and removing devices are detached by their own thread when the driver returns.
      if (rec.state !== "bound") continue;
      void this.spawnOp(`unbind:${rec.dev.name}`, owner, async () => {
        if (rec.state === "bound") this.detach(rec, rec.drv!, "crash");
      });
    }
  }

  private sessionBegin(d: DriverRecord, dev: device): void {
    d.session ??= { startNs: this.k.exec.now(), devices: new Set(), crashed: false };
    d.session.devices.add(dev.name);
    d.active++;
  }

  private sessionEnd(d: DriverRecord, dev: device, reason: unbind_reason): void {
    const s = d.session!;
    d.active--;
    if (reason === "crash") s.crashed = true;
    if (d.active > 0) return;
    d.session = null;
    // After an oops the driver never got to clean up: leaks would only be noise.
    if (!s.crashed) kmemleak_check_unbind(this.k, d.drv.name, s.startNs, [...s.devices].join(", ") || dev.name);
  }

  // ------------------------------------------------------------ reports

  summary(): driver_core_summary_t {
    const devices = this.devices.map((r) => ({
      name: r.dev.name,
      bus: r.bus.name,
      driver: r.drv?.drv.name ?? null,
      state: r.state,
      dead: r.dev.dead,
      devres: devres_count(r.dev),
      devres_names: devres_names(r.dev),
    }));
    const drivers = this.drivers.map((d) => ({
      name: d.drv.name,
      bus: d.bus.name,
      bound: this.devices.filter((r) => r.drv === d && r.state === "bound").map((r) => r.dev.name),
      crashed: d.crashed,
    }));
    return { devices, drivers, pending: this.pending };
  }
}

/** The driver core of kernel `k` (created on first use). */
export function driver_core(k: Kernel = current_kernel()): DriverCore {
  return k.state("base", () => new DriverCore(k));
}

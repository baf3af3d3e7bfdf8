/**
 * The dmaengine core (drivers/dma/dmaengine.c): providers register their controllers, clients
 * request and release channels.
 *
 * Theory of operation
 * - A provider fills a dma_device (its `dev`, channels, capabilities and operations) and calls
 *   dma_async_device_register(); the device is named "dmaN" and its channels "dmaNchanM".
 * - There is no device tree: a client asks for a channel by name. "chN" is channel N of the
 *   first registered controller that has one, "any" is the first free channel anywhere;
 *   dma_request_chan_by_mask() picks a free channel of a controller with the capabilities.
 *   A channel is exclusive: a second request gets -EBUSY. Nothing registered yet gives
 *   -EPROBE_DEFER, as a client probing before its controller would get in Linux.
 * - The client that requested a channel (the running driver) is recorded on it, so its
 *   callbacks are attributed to it, and if that client oopses its channels are terminated and
 *   released. A provider unregistering while clients still hold channels is a WARN.
 */

import type { Kernel } from "../core/kernel.ts";
import { current_kernel } from "../core/current.ts";
import { KERN_ERR, KERN_INFO } from "../core/printk.ts";
import { might_sleep_in } from "../irq/context.ts";
import type { device } from "../include/device.ts";
import { EBUSY, EINVAL, EIO, ENODEV, EPROBE_DEFER, ERR_PTR, type err_ptr } from "../include/errno.ts";
import { devm_add_action_or_reset } from "../base/devres.ts";
import {
  DMA_CYCLIC, DMA_MEMCPY, DMA_SLAVE, type dma_cap_mask_t, type dma_chan, type dma_device, type dma_transaction_type,
} from "./defs.ts";

interface DmaEngineState {
  readonly devices: dma_device[];
  nextId: number;
}

function dmaengine_state(k: Kernel): DmaEngineState {
  return k.state("dmaengine", () => {
    const st: DmaEngineState = { devices: [], nextId: 0 };
    k.onCrash((owner) => release_crashed_client(k, st, owner));
    return st;
  });
}

/** The registered controllers of @k, in registration order (for tests and reports). */
export function dma_devices(k: Kernel = current_kernel()): readonly dma_device[] {
  return dmaengine_state(k).devices;
}

// ---------------------------------------------------------------- capability masks

export function dma_cap_zero(mask: dma_cap_mask_t): void {
  mask.bits = 0;
}

export function dma_cap_set(tx_type: dma_transaction_type, mask: dma_cap_mask_t): void {
  mask.bits |= 1 << tx_type;
}

export function dma_cap_clear(tx_type: dma_transaction_type, mask: dma_cap_mask_t): void {
  mask.bits &= ~(1 << tx_type);
}

export function dma_has_cap(tx_type: dma_transaction_type, mask: dma_cap_mask_t): boolean {
  return (mask.bits & (1 << tx_type)) !== 0;
}

// ---------------------------------------------------------------- providers

/** Why @dd cannot be registered, or null (dma_async_device_check). */
function device_problem(dd: dma_device): string | null {
  if (!dd.dev) return "no struct device (dma_device.dev)";
  if (dd.channels.length === 0) return "no channels";
  if (!dd.device_tx_status) return "device_tx_status is not provided";
  if (!dd.device_issue_pending) return "device_issue_pending is not provided";
  if (dma_has_cap(DMA_MEMCPY, dd.cap_mask) && !dd.device_prep_dma_memcpy) return "DMA_MEMCPY set but device_prep_dma_memcpy is not provided";
  if (dma_has_cap(DMA_SLAVE, dd.cap_mask) && !dd.device_prep_slave_sg) return "DMA_SLAVE set but device_prep_slave_sg is not provided";
  if (dma_has_cap(DMA_CYCLIC, dd.cap_mask) && !dd.device_prep_dma_cyclic) return "DMA_CYCLIC set but device_prep_dma_cyclic is not provided";
  if ((dd.device_pause === undefined) !== (dd.device_resume === undefined)) return "device_pause and device_resume must come together";
  for (const c of dd.channels) if (c.device !== dd) return "a channel's device field does not point back at the dma_device";
  return null;
}

/**
 * dma_async_device_register - make a controller's channels available to clients
 * Context: process (a provider's probe).
 * Returns: 0, -EINVAL for a device already registered, or -EIO for an incomplete description
 * (logged, as dma_async_device_check does).
 */
export function dma_async_device_register(dd: dma_device): number {
  const k = current_kernel();
  const st = dmaengine_state(k);
  if (st.devices.includes(dd)) return -EINVAL;
  const why = device_problem(dd);
  if (why) {
    k.printk.log(KERN_ERR, `dmaengine: cannot register ${dd.dev?.name ?? "a device"}: ${why}`);
    return -EIO;
  }
  dd._id = st.nextId++;
  dd._owner = k.exec.owner;
  dd.channels.forEach((c, i) => {
    c.chan_id = i;
    c._name = `dma${dd._id}chan${i}`;
  });
  st.devices.push(dd);
  k.printk.log(KERN_INFO, `dmaengine: dma${dd._id}: ${dd.dev.name}, ${dd.channels.length} channel${dd.channels.length === 1 ? "" : "s"}`);
  return 0;
}

/**
 * dma_async_device_unregister - withdraw a controller
 * Context: process (a provider's remove). WARNs if clients still hold its channels: they
 * must release them first (their transfers would run into a vanished provider).
 */
export function dma_async_device_unregister(dd: dma_device): void {
  const k = current_kernel();
  const st = dmaengine_state(k);
  const i = st.devices.indexOf(dd);
  if (i < 0) return;
  const held = dd.channels.filter((c) => c.client_count > 0);
  if (held.length) {
    k.warn(`dma_async_device_unregister called while ${held.length} client${held.length === 1 ? "" : "s"} hold a reference (${held.map((c) => `${c._name} by ${c._client_owner || "?"}`).join(", ")})`);
  }
  st.devices.splice(i, 1);
}

/**
 * dmaenginem_async_device_register - dma_async_device_register, undone when the provider
 * detaches. Context: process. Returns: as dma_async_device_register.
 */
export function dmaenginem_async_device_register(dd: dma_device): number {
  const ret = dma_async_device_register(dd);
  if (ret) return ret;
  return devm_add_action_or_reset(dd.dev, dma_async_device_unregister, dd);
}

// ---------------------------------------------------------------- clients

function take(k: Kernel, chan: dma_chan, dev: device | null, name: string): dma_chan | err_ptr {
  const dd = chan.device;
  if (dd.device_alloc_chan_resources) {
    const ret = dd.device_alloc_chan_resources(chan);
    if (ret < 0) return ERR_PTR(ret);
  }
  chan.client_count = 1;
  chan.name = name;
  chan._client_owner = k.exec.owner;
  chan._client_dev = dev;
  return chan;
}

/**
 * dma_request_chan - get an exclusive channel by name
 * @dev: the client's device (for messages; may be null)
 * @name: "ch0".."chN" (that channel of the first controller having it) or "any"
 * Context: process (may sleep).
 * Returns: the channel, or ERR_PTR(-EPROBE_DEFER) when no controller is registered yet,
 * -ENODEV when none has such a channel, -EBUSY when it is taken (or none is free).
 */
export function dma_request_chan(dev: device | null, name: string): dma_chan | err_ptr {
  const k = current_kernel();
  might_sleep_in(k, "dma_request_chan");
  const st = dmaengine_state(k);
  if (st.devices.length === 0) return ERR_PTR(-EPROBE_DEFER);
  if (name === "any") {
    for (const dd of st.devices) for (const c of dd.channels) if (c.client_count === 0) return take(k, c, dev, name);
    return ERR_PTR(-EBUSY);
  }
  const m = /^ch(\d+)$/.exec(name);
  if (!m) {
    k.printk.log(KERN_ERR, `${dev ? `${dev.name}: ` : ""}dma_request_chan: no channel named "${name}" (use "ch<N>" or "any")`);
    return ERR_PTR(-ENODEV);
  }
  const n = Number(m[1]);
  const dd = st.devices.find((d) => n < d.channels.length);
  if (!dd) return ERR_PTR(-ENODEV);
  const chan = dd.channels[n];
  if (chan.client_count > 0) return ERR_PTR(-EBUSY);
  return take(k, chan, dev, name);
}

/**
 * dma_request_chan_by_mask - get a free channel of a controller with every capability in @mask
 * Context: process. Returns: the channel or ERR_PTR(-EPROBE_DEFER / -ENODEV).
 */
export function dma_request_chan_by_mask(mask: dma_cap_mask_t): dma_chan | err_ptr {
  const k = current_kernel();
  might_sleep_in(k, "dma_request_chan_by_mask");
  const st = dmaengine_state(k);
  if (st.devices.length === 0) return ERR_PTR(-EPROBE_DEFER);
  for (const dd of st.devices) {
    if ((dd.cap_mask.bits & mask.bits) !== mask.bits) continue;
    for (const c of dd.channels) if (c.client_count === 0) return take(k, c, null, "by-mask");
  }
  return ERR_PTR(-ENODEV);
}

/**
 * dma_release_channel - give a channel back
 * Context: process. The client must have terminated (and synchronized) its transfers.
 */
export function dma_release_channel(chan: dma_chan): void {
  const k = current_kernel();
  if (chan.client_count === 0) {
    k.warn(`dma_release_channel: ${chan._name} is not requested (double release?)`);
    return;
  }
  chan.device.device_free_chan_resources?.(chan);
  chan.client_count = 0;
  chan.name = null;
  chan._client_owner = "";
  chan._client_dev = null;
}

/** A client oopsed: stop and release the channels it held so the controller goes quiet. */
function release_crashed_client(k: Kernel, st: DmaEngineState, owner: string): void {
  for (const dd of st.devices) {
    for (const c of dd.channels) {
      if (c.client_count === 0 || c._client_owner !== owner) continue;
      dd.device_terminate_all?.(c);
      dd.device_synchronize?.(c);
      const saved = k.exec.owner;
      k.exec.owner = dd._owner;
      try {
        dma_release_channel(c);
      } finally {
        k.exec.owner = saved;
      }
    }
  }
}

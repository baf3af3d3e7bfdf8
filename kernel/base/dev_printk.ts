/**
 * Device messages (drivers/base/core.c, include/linux/dev_printk.h).
 *
 * Every line is prefixed "<driver> <device>: ", or "<bus> <device>: " while no driver is bound
 * (e.g. "edu 0000:00:03.0: " and "pci 0000:00:03.0: "), so dmesg says who spoke. Messages are
 * plain strings (drivers build them with template literals); a trailing newline is dropped.
 */

import { current_kernel } from "../core/current.ts";
import { KERN_DEBUG, KERN_EMERG, KERN_ALERT, KERN_CRIT, KERN_ERR, KERN_INFO, KERN_NOTICE, KERN_WARNING } from "../core/printk.ts";
import type { device } from "../include/device.ts";
import { EPROBE_DEFER, errname } from "../include/errno.ts";

/** dev_driver_string - the bound driver's name, else the bus name. */
export function dev_driver_string(dev: device): string {
  return dev.driver?.name ?? dev.bus;
}

/** The "<driver> <device>: " prefix of every device message. */
export function dev_prefix(dev: device): string {
  return `${dev_driver_string(dev)} ${dev.name}: `;
}

function chomp(msg: string): string {
  return msg.endsWith("\n") ? msg.slice(0, -1) : msg;
}

/**
 * dev_printk - log `msg` at KERN_* `level` with the device prefix
 * Context: any.
 */
export function dev_printk(level: number, dev: device, msg: string): void {
  current_kernel().printk.log(level, chomp(msg), dev_prefix(dev));
}

export const dev_emerg = (dev: device, msg: string): void => dev_printk(KERN_EMERG, dev, msg);
export const dev_alert = (dev: device, msg: string): void => dev_printk(KERN_ALERT, dev, msg);
export const dev_crit = (dev: device, msg: string): void => dev_printk(KERN_CRIT, dev, msg);
export const dev_err = (dev: device, msg: string): void => dev_printk(KERN_ERR, dev, msg);
export const dev_warn = (dev: device, msg: string): void => dev_printk(KERN_WARNING, dev, msg);
export const dev_notice = (dev: device, msg: string): void => dev_printk(KERN_NOTICE, dev, msg);
export const dev_info = (dev: device, msg: string): void => dev_printk(KERN_INFO, dev, msg);
export const dev_dbg = (dev: device, msg: string): void => dev_printk(KERN_DEBUG, dev, msg);

function once(key: string): boolean {
  const seen = current_kernel().state("printk_once", () => new Set<string>());
  if (seen.has(key)) return false;
  seen.add(key);
  return true;
}

/** dev_warn_once - dev_warn, only the first time this device logs this message. */
export function dev_warn_once(dev: device, msg: string): void {
  if (once(`${dev.name}\0${msg}`)) dev_warn(dev, msg);
}

/** dev_err_once - dev_err, only the first time this device logs this message. */
export function dev_err_once(dev: device, msg: string): void {
  if (once(`${dev.name}\0${msg}`)) dev_err(dev, msg);
}

/**
 * dev_err_probe - log a probe error and return it
 * @dev: the device being probed
 * @err: negative errno
 * @msg: what failed
 * Logs "error -ENOMEM: <msg>" at KERN_ERR, or at KERN_DEBUG for -EPROBE_DEFER (a deferral is
 * not an error), as Linux does.
 * Returns: `err`, so `return dev_err_probe(dev, ret, "...")` ends a probe.
 */
export function dev_err_probe(dev: device, err: number, msg: string): number {
  const text = `error ${errname(err)}: ${chomp(msg)}`;
  dev_printk(err === -EPROBE_DEFER ? KERN_DEBUG : KERN_ERR, dev, text);
  return err;
}

/**
 * dev_WARN - a WARN() naming the device: logs, counts and adds a "warn" finding
 * Context: any.
 */
export function dev_WARN(dev: device, msg: string): void {
  current_kernel().warn(chomp(msg), dev_prefix(dev));
}

/** dev_WARN_ON - dev_WARN when `cond` holds; returns `cond` as a boolean, like WARN_ON. */
export function dev_WARN_ON(dev: device, cond: unknown, msg = "dev_WARN_ON condition true"): boolean {
  if (cond) dev_WARN(dev, msg);
  return !!cond;
}

/**
 * printk and the pr_* helpers for code that has no device at hand (include/linux/printk.h).
 *
 * Levels are the KERN_* numbers of the core log. `printk(text)` logs at the default message
 * level (KERN_WARNING, Linux's default); `printk(KERN_INFO, text)` at an explicit one.
 */

import { current_kernel } from "../core/current.ts";
import { KERN_ALERT, KERN_CRIT, KERN_DEBUG, KERN_EMERG, KERN_ERR, KERN_INFO, KERN_NOTICE, KERN_WARNING } from "../core/printk.ts";

/** Level of a printk without one (CONFIG_MESSAGE_LOGLEVEL_DEFAULT). */
export const KERN_DEFAULT = KERN_WARNING;

function chomp(msg: string): string {
  return msg.endsWith("\n") ? msg.slice(0, -1) : msg;
}

/**
 * printk - log a message
 * @levelOrText: a KERN_* level followed by the text, or just the text (KERN_DEFAULT)
 * Context: any.
 */
export function printk(levelOrText: number | string, text?: string): void {
  const level = typeof levelOrText === "number" ? levelOrText : KERN_DEFAULT;
  const msg = typeof levelOrText === "number" ? (text ?? "") : levelOrText;
  current_kernel().printk.log(level, chomp(msg));
}

export const pr_emerg = (msg: string): void => printk(KERN_EMERG, msg);
export const pr_alert = (msg: string): void => printk(KERN_ALERT, msg);
export const pr_crit = (msg: string): void => printk(KERN_CRIT, msg);
export const pr_err = (msg: string): void => printk(KERN_ERR, msg);
export const pr_warn = (msg: string): void => printk(KERN_WARNING, msg);
export const pr_notice = (msg: string): void => printk(KERN_NOTICE, msg);
export const pr_info = (msg: string): void => printk(KERN_INFO, msg);
export const pr_debug = (msg: string): void => printk(KERN_DEBUG, msg);

/** pr_warn_once - pr_warn, only the first time this message is logged. */
export function pr_warn_once(msg: string): void {
  const seen = current_kernel().state("printk_once", () => new Set<string>());
  if (seen.has(`\0${msg}`)) return;
  seen.add(`\0${msg}`);
  pr_warn(msg);
}

/**
 * Managed device resources (drivers/base/devres.c).
 *
 * Theory of operation
 * - Every device keeps a list of (name, release) nodes in acquisition order (`dev.devres`).
 *   A devm_* helper acquires a resource and appends the node that undoes it. The driver core
 *   calls devres_release_all() when probe fails and after remove(), and it releases the list
 *   in reverse, so a probe written with devm_* helpers needs no unwind ladder.
 * - Groups are marker nodes in the same list: devres_open_group() appends an opening marker,
 *   devres_close_group() a closing one; devres_release_group() releases what lies between
 *   them (nested groups included), again in reverse.
 * - A release action that throws is an oops of the running driver; the remaining nodes are
 *   still released, because the core must leave the device clean whatever the driver did.
 */

import { current_kernel } from "../core/current.ts";
import type { device, devres_node } from "../include/device.ts";
import { ENOENT } from "../include/errno.ts";
import { NULL, kfree, kmalloc } from "../mm/slab-api.ts";
import { __GFP_ZERO, type gfp_t, type vaddr_t } from "../include/types.ts";

/**
 * A devres node as the core stores it: a resource, or a group marker. Other subsystems may
 * push plain {name, release} nodes onto dev.devres (dmam_*): no kind means a resource.
 */
interface devres_entry extends devres_node {
  readonly kind?: "res" | "open" | "close";
  /** devm_add_action's callback and argument, to find the node again. */
  readonly action?: (data: never) => void;
  readonly data?: unknown;
  /** Group id for markers. */
  readonly group?: unknown;
}

function entries(dev: device): devres_entry[] {
  return dev.devres as devres_entry[];
}

function is_res(e: devres_entry): boolean {
  return e.kind !== "open" && e.kind !== "close";
}

function release_one(e: devres_entry): void {
  const k = current_kernel();
  try {
    e.release();
  } catch (err) {
    k.oops(err, `devres release ${e.name}`, k.exec.owner);
  }
}

/** Release `list` (already detached from the device) last-acquired first. Returns the count. */
function release_nodes(list: devres_entry[]): number {
  let n = 0;
  for (let i = list.length - 1; i >= 0; i--) {
    if (!is_res(list[i])) continue;
    release_one(list[i]);
    n++;
  }
  return n;
}

/**
 * devres_add - register a managed resource with a device
 * @dev: device the resource belongs to
 * @node: its name (for reports) and the function that releases it
 * Context: any.
 */
export function devres_add(dev: device, node: devres_node): void {
  entries(dev).push(node);
}

/** devres_count - number of live managed resources of `dev` (group markers excluded). */
export function devres_count(dev: device): number {
  return entries(dev).filter(is_res).length;
}

/** devres_names - names of `dev`'s managed resources in acquisition order (for reports). */
export function devres_names(dev: device): string[] {
  return entries(dev).filter(is_res).map((e) => e.name);
}

/**
 * devres_release_all - release every managed resource of a device, newest first
 * @dev: the device being unbound
 * Context: process (the driver core calls it after a failed probe and after remove()).
 * Returns: the number of resources released.
 */
export function devres_release_all(dev: device): number {
  const list = entries(dev).splice(0);
  return release_nodes(list);
}

/**
 * devm_add_action - run `action(data)` when the driver detaches from `dev`
 * Context: any.
 * Returns: 0 (-ENOMEM is reserved for allocation-failure injection).
 */
export function devm_add_action<T>(dev: device, action: (data: T) => void, data: T): number {
  const name = action.name || "devm_action";
  entries(dev).push({ kind: "res", name, release: () => action(data), action: action as (d: never) => void, data });
  return 0;
}

/**
 * devm_add_action_or_reset - devm_add_action, running `action(data)` at once if it fails
 * Returns: 0 or the error of devm_add_action.
 */
export function devm_add_action_or_reset<T>(dev: device, action: (data: T) => void, data: T): number {
  const ret = devm_add_action(dev, action, data);
  if (ret) action(data);
  return ret;
}

function find_action(dev: device, action: (data: never) => void, data: unknown): number {
  const list = entries(dev);
  for (let i = list.length - 1; i >= 0; i--) {
    if (is_res(list[i]) && list[i].action === action && list[i].data === data) return i;
  }
  return -1;
}

/**
 * devm_remove_action - forget an action added with devm_add_action without running it
 * Context: any. WARNs when no such action is registered.
 */
export function devm_remove_action<T>(dev: device, action: (data: T) => void, data: T): void {
  const i = find_action(dev, action as (d: never) => void, data);
  if (i < 0) {
    current_kernel().warn(`devm_remove_action: no action ${action.name || "?"} registered on ${dev.name}`);
    return;
  }
  entries(dev).splice(i, 1);
}

/**
 * devm_release_action - run an action added with devm_add_action now and forget it
 * Context: any. WARNs when no such action is registered.
 */
export function devm_release_action<T>(dev: device, action: (data: T) => void, data: T): void {
  const i = find_action(dev, action as (d: never) => void, data);
  if (i < 0) {
    current_kernel().warn(`devm_release_action: no action ${action.name || "?"} registered on ${dev.name}`);
    return;
  }
  const [e] = entries(dev).splice(i, 1);
  release_one(e);
}

/**
 * devres_release_node - release the newest resource matching `pred` (used by devm_*free helpers)
 * Returns: true when a node was found and released.
 */
export function devres_release_node(dev: device, pred: (name: string, data: unknown) => boolean): boolean {
  const list = entries(dev);
  for (let i = list.length - 1; i >= 0; i--) {
    if (is_res(list[i]) && pred(list[i].name, list[i].data)) {
      const [e] = list.splice(i, 1);
      release_one(e);
      return true;
    }
  }
  return false;
}

/** Add a node that carries `data` so devres_release_node can find it by value. */
export function devres_add_data(dev: device, name: string, data: unknown, release: () => void): void {
  entries(dev).push({ kind: "res", name, release, data });
}

// ------------------------------------------------------------------ groups

/**
 * devres_open_group - open a new devres group
 * @dev: device
 * @id: group id; null makes a fresh one
 * Context: any.
 * Returns: the group id.
 */
export function devres_open_group(dev: device, id: unknown = null, _gfp: gfp_t = 0): unknown {
  const group = id ?? { devres_group: entries(dev).length };
  entries(dev).push({ kind: "open", name: "devres_group", release: () => {}, group });
  return group;
}

function find_marker(dev: device, kind: "open" | "close", id: unknown): number {
  const list = entries(dev);
  for (let i = list.length - 1; i >= 0; i--) {
    if (list[i].kind !== kind) continue;
    if (id === null || list[i].group === id) return i;
  }
  return -1;
}

/** The [open, end) span of group `id`; end is past its closing marker, or the list end. */
function group_span(dev: device, id: unknown): [number, number] | null {
  const open = find_marker(dev, "open", id);
  if (open < 0) return null;
  const list = entries(dev);
  const group = list[open].group;
  const close = list.findIndex((e, i) => i > open && e.kind === "close" && e.group === group);
  return [open, close < 0 ? list.length : close + 1];
}

/**
 * devres_close_group - close group `id` (null: the newest open group)
 * Context: any. WARNs when the group does not exist.
 */
export function devres_close_group(dev: device, id: unknown = null): void {
  const open = find_marker(dev, "open", id);
  if (open < 0) {
    current_kernel().warn(`devres_close_group: no such group on ${dev.name}`);
    return;
  }
  const group = entries(dev)[open].group;
  entries(dev).push({ kind: "close", name: "devres_group", release: () => {}, group });
}

/**
 * devres_remove_group - drop group `id`'s markers, keeping its resources on the device
 * Context: any. WARNs when the group does not exist.
 */
export function devres_remove_group(dev: device, id: unknown = null): void {
  const span = group_span(dev, id);
  if (!span) {
    current_kernel().warn(`devres_remove_group: no such group on ${dev.name}`);
    return;
  }
  const list = entries(dev);
  const group = list[span[0]].group;
  for (let i = span[1] - 1; i >= span[0]; i--) {
    if (!is_res(list[i]) && list[i].group === group) list.splice(i, 1);
  }
}

/**
 * devres_release_group - release every resource acquired inside group `id`, newest first
 * Context: process.
 * Returns: the number of resources released, or -ENOENT (with a WARN) when there is no such group.
 */
export function devres_release_group(dev: device, id: unknown = null): number {
  const span = group_span(dev, id);
  if (!span) {
    current_kernel().warn(`devres_release_group: no such group on ${dev.name}`);
    return -ENOENT;
  }
  const list = entries(dev).splice(span[0], span[1] - span[0]);
  return release_nodes(list);
}

// ------------------------------------------------------------------ managed kmalloc

/**
 * devm_kmalloc - kmalloc freed automatically when the driver detaches
 * @dev: device the memory belongs to
 * @size: bytes wanted
 * @gfp: GFP flags (__GFP_ZERO zeroes it)
 * Context: as kmalloc.
 * Returns: the address, or NULL.
 */
export function devm_kmalloc(dev: device, size: number, gfp: gfp_t): vaddr_t {
  const p = kmalloc(size, gfp);
  if (!p) return NULL;
  devres_add_data(dev, `devm_kmalloc(${size})`, p, () => kfree(p));
  return p;
}

/** devm_kzalloc - devm_kmalloc, zeroed. */
export function devm_kzalloc(dev: device, size: number, gfp: gfp_t): vaddr_t {
  return devm_kmalloc(dev, size, gfp | __GFP_ZERO);
}

/** devm_kcalloc - zeroed managed array of `n` elements; NULL on overflow or failure. */
export function devm_kcalloc(dev: device, n: number, size: number, gfp: gfp_t): vaddr_t {
  if (!Number.isSafeInteger(n * size)) return NULL;
  return devm_kzalloc(dev, n * size, gfp);
}

/**
 * devm_kfree - free managed memory before the driver detaches
 * Context: as kfree. WARNs when `p` is not managed memory of `dev` (Linux's WARN_ON).
 */
export function devm_kfree(dev: device, p: vaddr_t): void {
  if (!p) return;
  const found = devres_release_node(dev, (name, data) => name.startsWith("devm_kmalloc(") && data === p);
  if (!found) current_kernel().warn(`devm_kfree: 0x${p.toString(16)} is not managed memory of ${dev.name}`);
}

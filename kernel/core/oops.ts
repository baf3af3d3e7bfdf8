/**
 * Kernel bugs and oopses. An exception inside kernel or driver code is a kernel BUG: it is
 * caught where the kernel called into a driver (probe, an IRQ handler, a timer, a thread),
 * reported as an oops, and the offending driver is unbound; the simulation goes on.
 */

/** A fault the CPU took in kernel mode: a bad pointer, a bus error, BUG(). */
export class KernelOops extends Error {
  constructor(
    message: string,
    readonly address?: number,
  ) {
    super(message);
    this.name = "KernelOops";
  }
}

/** BUG(): a broken kernel invariant. */
export function BUG(why = "kernel BUG"): never {
  throw new KernelOops(`kernel BUG: ${why}`);
}

export function BUG_ON(cond: unknown, why = "BUG_ON condition true"): void {
  if (cond) BUG(why);
}

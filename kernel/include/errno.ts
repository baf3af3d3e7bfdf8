/** Linux errno values. Kernel calls return 0 or a negative errno; drivers pass them up. */
export const EPERM = 1;
export const ENOENT = 2;
export const EINTR = 4;
export const EIO = 5;
export const ENXIO = 6;
export const E2BIG = 7;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const EINVAL = 22;
export const ENOSPC = 28;
export const ERANGE = 34;
export const ENOSYS = 38;
export const ETIMEDOUT = 110;
export const EREMOTEIO = 121;
export const EPROBE_DEFER = 517;

const NAMES: Record<number, string> = {
  [EPERM]: "EPERM", [ENOENT]: "ENOENT", [EINTR]: "EINTR", [EIO]: "EIO", [ENXIO]: "ENXIO",
  [E2BIG]: "E2BIG", [EAGAIN]: "EAGAIN", [ENOMEM]: "ENOMEM", [EFAULT]: "EFAULT", [EBUSY]: "EBUSY",
  [EEXIST]: "EEXIST", [ENODEV]: "ENODEV", [EINVAL]: "EINVAL", [ENOSPC]: "ENOSPC", [ERANGE]: "ERANGE",
  [ENOSYS]: "ENOSYS", [ETIMEDOUT]: "ETIMEDOUT", [EREMOTEIO]: "EREMOTEIO", [EPROBE_DEFER]: "EPROBE_DEFER",
};

/** "-ENOMEM" for -12, for messages. */
export function errname(err: number): string {
  const n = NAMES[Math.abs(err)];
  return n ? (err < 0 ? `-${n}` : n) : String(err);
}

/** An error pointer: what ERR_PTR returns, tested with IS_ERR and decoded with PTR_ERR. */
export interface err_ptr {
  readonly __err_ptr: number;
}

export function ERR_PTR(err: number): err_ptr {
  return { __err_ptr: err };
}

export function IS_ERR<T>(p: T | err_ptr): p is err_ptr {
  return typeof p === "object" && p !== null && "__err_ptr" in p;
}

export function PTR_ERR(p: err_ptr): number {
  return p.__err_ptr;
}

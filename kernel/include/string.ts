/**
 * Driver-facing memory access (include/linux/string.h, uaccess.h, plus typed loads and stores
 * standing in for C pointer dereferences: kread32(p) is `*(u32 *)p`).
 */
export {
  memcpy, memset, copy_from_user, copy_to_user,
  kread8, kread16, kread32, kread64, kwrite8, kwrite16, kwrite32, kwrite64,
} from "../mm/access.ts";

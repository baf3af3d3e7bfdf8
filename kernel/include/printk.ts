/**
 * Driver-facing logging (include/linux/printk.h, dev_printk.h). Messages are strings (build
 * them with template literals); dev_* prefix them "<driver> <device>: " like Linux.
 */
export {
  KERN_EMERG, KERN_ALERT, KERN_CRIT, KERN_ERR, KERN_WARNING, KERN_NOTICE, KERN_INFO, KERN_DEBUG,
} from "../core/printk.ts";
export {
  KERN_DEFAULT, printk, pr_emerg, pr_alert, pr_crit, pr_err, pr_warn, pr_notice, pr_info, pr_debug, pr_warn_once,
} from "../base/printk.ts";
export {
  dev_printk, dev_emerg, dev_alert, dev_crit, dev_err, dev_warn, dev_notice, dev_info, dev_dbg,
  dev_warn_once, dev_err_once, dev_err_probe, dev_WARN, dev_WARN_ON, dev_driver_string,
} from "../base/dev_printk.ts";

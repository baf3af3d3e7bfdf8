/**
 * printk: the kernel log, in dmesg format with virtual timestamps, carried by pino.
 *
 * Every message is kept in the log buffer (what `dmesg` would show, used by reports and tests)
 * and handed to a pino logger whose timestamp is virtual time, so two runs with one seed log
 * identical bytes. KERN_* levels map onto pino levels (notice, crit and alert are custom).
 */

import pino, { type Logger } from "pino";
import { Writable } from "node:stream";

export const KERN_EMERG = 0;
export const KERN_ALERT = 1;
export const KERN_CRIT = 2;
export const KERN_ERR = 3;
export const KERN_WARNING = 4;
export const KERN_NOTICE = 5;
export const KERN_INFO = 6;
export const KERN_DEBUG = 7;

const PINO_LEVEL = ["fatal", "alert", "crit", "error", "warn", "notice", "info", "debug"] as const;
export type LogLevelName = "silent" | "error" | "warn" | "notice" | "info" | "debug";

export interface LogRecord {
  readonly timeNs: number;
  readonly level: number;
  readonly prefix: string; // "edu 0000:00:03.0: " or ""
  readonly text: string;
}

/** "[    0.001234] " for a virtual time in ns. */
export function dmesgStamp(ns: number): string {
  const us = Math.floor(ns / 1000);
  const sec = Math.floor(us / 1_000_000);
  const frac = String(us % 1_000_000).padStart(6, "0");
  return `[${String(sec).padStart(5, " ")}.${frac}] `;
}

export function formatRecord(r: LogRecord): string {
  return `${dmesgStamp(r.timeNs)}${r.prefix}${r.text}`;
}

export interface PrintkSink {
  /** Receives each formatted dmesg line (without newline) at or above the sink's level. */
  (line: string, record: LogRecord): void;
}

export class Printk {
  readonly records: LogRecord[] = [];
  private readonly logger: Logger<"notice" | "crit" | "alert">;
  private nowNs = 0;

  constructor(
    private readonly now: () => number,
    level: LogLevelName = "info",
    sink?: PrintkSink,
  ) {
    const stream = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        if (sink) {
          for (const line of chunk.toString("utf8").split("\n")) {
            if (!line) continue;
            const o = JSON.parse(line) as { simt: number; printk: number; prefix: string; msg: string };
            const rec: LogRecord = { timeNs: o.simt, level: o.printk, prefix: o.prefix, text: o.msg };
            sink(formatRecord(rec), rec);
          }
        }
        cb();
      },
    });
    this.logger = pino(
      {
        level: level === "silent" ? "silent" : level,
        customLevels: { notice: 35, crit: 55, alert: 58 },
        base: null,
        timestamp: () => `,"simt":${this.nowNs}`,
      },
      stream,
    );
  }

  /** Log `text` at KERN_* `level`, optionally prefixed with a device ("edu 0000:00:03.0: "). */
  log(level: number, text: string, prefix = ""): void {
    this.nowNs = this.now();
    this.records.push({ timeNs: this.nowNs, level, prefix, text });
    const name = PINO_LEVEL[Math.max(0, Math.min(7, level))];
    this.logger[name]({ printk: level, prefix }, text);
  }

  /** The log as dmesg lines. */
  dmesg(maxLevel = KERN_DEBUG): string[] {
    return this.records.filter((r) => r.level <= maxLevel).map(formatRecord);
  }
}

/**
 * The ratelimit of dev_warn_ratelimited (lib/ratelimit.c) on virtual time, for swiotlb's
 * "buffer is full" warnings: at most DEFAULT_RATELIMIT_BURST lines per
 * DEFAULT_RATELIMIT_INTERVAL, then, when the next interval starts, one line saying how many
 * were suppressed. A driver hammering a full pool must not flood the log.
 */

export const DEFAULT_RATELIMIT_INTERVAL_NS = 5e9;
export const DEFAULT_RATELIMIT_BURST = 10;

export class RateLimit {
  private begin = -Infinity;
  private printed = 0;
  private missed = 0;

  constructor(
    private readonly intervalNs = DEFAULT_RATELIMIT_INTERVAL_NS,
    private readonly burst = DEFAULT_RATELIMIT_BURST,
  ) {}

  /**
   * ok - may a message go out at @now?
   * @suppressed: called first with the count of messages dropped in the interval just ended
   * Returns: true to print, false to drop (and count) it.
   */
  ok(now: number, suppressed: (missed: number) => void): boolean {
    if (now - this.begin >= this.intervalNs) {
      if (this.missed) suppressed(this.missed);
      this.begin = now;
      this.printed = 0;
      this.missed = 0;
    }
    if (this.printed >= this.burst) {
      this.missed++;
      return false;
    }
    this.printed++;
    return true;
  }
}

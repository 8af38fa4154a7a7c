// When a failed webhook delivery is tried again. The schedule is Svix's shape stretched to about three
// days, so a receiver that is down over a weekend night still gets every message once it is back:
//
//   attempt   1    immediately (the outbox sweep, within a minute of the change)
//   attempt   2    5 s after attempt 1 failed
//   attempt   3    5 min later
//   attempt   4    30 min
//   attempt   5    2 h
//   attempt   6    5 h
//   attempt   7    10 h
//   attempt   8    14 h
//   attempt   9    20 h
//   attempt  10    24 h          → about 75 h 35 min after the first attempt, then the delivery is failed
//
// Each delay is spread by ±20 % jitter, so many deliveries that failed together (one receiver outage) do not
// all come back in the same second. Retries are picked up by the Cron sweep (every minute) once due, so a
// retry happens up to a minute after its time; nothing rests on a Queue delay (Queues cap those at 12 h).

/** Seconds before attempt n+1 after attempt n failed (index 0: after the first attempt). */
export const DEFAULT_RETRY_SCHEDULE_SECONDS: readonly number[] = [
  5,
  5 * 60,
  30 * 60,
  2 * 3600,
  5 * 3600,
  10 * 3600,
  14 * 3600,
  20 * 3600,
  24 * 3600,
];

/** ± this fraction of each delay is random. */
export const RETRY_JITTER = 0.2;

/**
 * Parses the WEBHOOK_RETRY_SCHEDULE_SECONDS var ("5,300,1800,…"): tests and local runs shorten the
 * schedule with it; production leaves it unset. Empty → the default.
 */
export function parseRetrySchedule(value: string | undefined): number[] {
  if (value === undefined || value.trim() === "") return [...DEFAULT_RETRY_SCHEDULE_SECONDS];
  const delays = value.split(",").map((part) => Number(part.trim()));
  if (delays.length > 50 || delays.some((d) => !Number.isInteger(d) || d < 0 || d > 7 * 86_400)) {
    throw new Error("WEBHOOK_RETRY_SCHEDULE_SECONDS: up to 50 whole seconds, each 0…604800");
  }
  return delays;
}

/** How many attempts a delivery gets in all: the first, then one per scheduled delay. */
export function maxAttempts(schedule: readonly number[]): number {
  return schedule.length + 1;
}

/**
 * When attempt `attemptsSoFar + 1` is due after attempt `attemptsSoFar` failed at `at`, or null when the
 * schedule is used up (the delivery fails). `random` is injected so tests can pin the jitter.
 */
export function nextAttemptAt(
  schedule: readonly number[],
  attemptsSoFar: number,
  at: Date,
  random: () => number = Math.random,
): Date | null {
  const base = schedule[attemptsSoFar - 1];
  if (base === undefined) return null;
  const factor = 1 + RETRY_JITTER * (2 * random() - 1);
  return new Date(at.getTime() + Math.round(base * factor * 1000));
}

/** The whole schedule's length without jitter (seconds): the "sustained failure" the README names. */
export function scheduleSpanSeconds(schedule: readonly number[]): number {
  return schedule.reduce((sum, d) => sum + d, 0);
}

/**
 * Exponential backoff for a message that failed `attempts` times (1 on the first failure): base, 2×base,
 * 4×base … capped, so a database outage is waited out without hammering it.
 */
export function retryDelaySeconds(attempts: number, baseSeconds: number, maxSeconds: number): number {
  const exponent = Math.max(0, Math.min(attempts - 1, 20));
  return Math.min(maxSeconds, baseSeconds * 2 ** exponent);
}

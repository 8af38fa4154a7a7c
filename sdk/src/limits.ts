// The ingest's limits (shared/limits.ts on the server; a unit test keeps the two equal).
export const LIMITS = {
  maxBodyBytes: 500 * 1024,
  maxEventBytes: 32 * 1024,
  maxEventsPerRequest: 500,
  maxNameLength: 128,
  maxUserIdLength: 256,
  /** Browsers refuse a keepalive request once the page's keepalive bodies in flight exceed 64 KiB. */
  maxKeepaliveBytes: 64 * 1024,
} as const;

/** UTF-8 length of a string without allocating (TextEncoder would copy it). */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 2; // a surrogate pair: 2 UTF-16 units, 4 bytes
        i++;
      } else n += 2; // a lone surrogate becomes U+FFFD (3 bytes) once encoded
    } else n += 2;
  }
  return n;
}

/**
 * The write key of a Segment-style request: HTTP Basic auth with the key as the user and an empty password
 * (`Authorization: Basic base64("<key>:")`). Without the colon is accepted too, as Segment still does for
 * older clients. A non-empty password is refused: nothing would read it, and a secret put there by mistake
 * should fail loudly rather than be silently ignored. Null when the header is not such a value.
 */
export function writeKeyFromBasicAuth(header: string | undefined): string | null {
  const encoded = /^Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(header ?? "")?.[1];
  if (!encoded) return null;
  let decoded: string;
  try {
    decoded = atob(encoded);
  } catch {
    return null;
  }
  const colon = decoded.indexOf(":");
  const user = colon === -1 ? decoded : decoded.slice(0, colon);
  const password = colon === -1 ? "" : decoded.slice(colon + 1);
  return user.length > 0 && password.length === 0 ? user : null;
}

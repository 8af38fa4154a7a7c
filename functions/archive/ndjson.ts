// Gzip NDJSON: one JSON object per line, gzip-compressed with the platform's CompressionStream (the
// same in workerd and Node), so an archive opens with `zcat | jq` and needs nothing of ours to read.

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function pipe(
  bytes: Uint8Array,
  transform: CompressionStream | DecompressionStream,
): Promise<Uint8Array> {
  const stream = new Blob([bytes]).stream().pipeThrough(transform);
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

export async function encodeNdjsonGz(rows: readonly unknown[]): Promise<Uint8Array> {
  const text = rows.map((row) => `${JSON.stringify(row)}\n`).join("");
  return pipe(encoder.encode(text), new CompressionStream("gzip"));
}

export async function decodeNdjsonGz(bytes: Uint8Array): Promise<unknown[]> {
  const text = decoder.decode(await pipe(bytes, new DecompressionStream("gzip")));
  return text
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as unknown);
}

/** Lower-case hex SHA-256 of bytes: how a read-back is compared with what was written. */
export async function sha256OfBytes(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  let hex = "";
  for (const byte of new Uint8Array(digest)) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

import { ApiError } from "../../shared/errors";

/**
 * Reads the body as text, refusing more than `maxBytes` whether or not Content-Length was sent (a chunked
 * upload is counted as it streams and cut off as soon as it passes the limit). `tooLarge` is the answer
 * then: 413 payload_too_large unless a route's contract says otherwise (Segment's says 400).
 */
export async function readBody(
  request: Pick<Request, "headers" | "body">,
  maxBytes: number,
  tooLarge: () => ApiError = () =>
    new ApiError("payload_too_large", `The request body may be at most ${maxBytes} bytes.`),
): Promise<{ text: string; bytes: number }> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > maxBytes) throw tooLarge();
  if (!request.body) return { text: "", bytes: 0 };
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { text: new TextDecoder().decode(bytes), bytes: total };
}

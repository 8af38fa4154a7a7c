import { describe, expect, it } from "vitest";
import { ApiError } from "../../shared/errors";
import { INGEST_LIMITS } from "../../shared/limits";
import { readBody } from "../../workers/common/readBody";

const URL = "https://ingest.example/l/events";
const LIMIT = 1024;
const encoder = new TextEncoder();

/** A body stream handing out the given chunks, counting how many were pulled and whether it was cancelled. */
function chunkedStream(chunks: Uint8Array[]) {
  const state = { pulled: 0, cancelled: false };
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      const chunk = chunks[state.pulled];
      if (chunk === undefined) {
        controller.close();
        return;
      }
      state.pulled += 1;
      controller.enqueue(chunk);
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { stream, state };
}

/** A body that never ends: only a reader that stops counting at the limit can get past it. */
function endlessStream() {
  const state = { pulled: 0, cancelled: false };
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      state.pulled += 1;
      controller.enqueue(new Uint8Array(256).fill(0x61));
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { stream, state };
}

function post(
  body: ReadableStream<Uint8Array> | string | null,
  headers: Record<string, string> = {},
): Request {
  // `duplex` is required by Node's fetch for a stream body; the Workers types do not declare it.
  const init: RequestInit & { duplex: "half" } = { method: "POST", body, headers, duplex: "half" };
  return new Request(URL, init);
}

async function tooLarge(request: Request, maxBytes = LIMIT): Promise<ApiError> {
  const error: unknown = await readBody(request, maxBytes).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ApiError);
  const apiError = error as ApiError;
  expect(apiError.code).toBe("payload_too_large");
  expect(apiError.status).toBe(413);
  expect(apiError.message).toContain(String(maxBytes));
  return apiError;
}

const split = (bytes: Uint8Array, size: number): Uint8Array[] => {
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.slice(i, i + size));
  return out;
};

describe("readBody", () => {
  it("a Content-Length over the limit is refused before the body is read", async () => {
    const { stream, state } = chunkedStream([new Uint8Array(LIMIT + 1)]);
    const request = post(stream, { "content-length": String(LIMIT + 1) });
    await tooLarge(request);
    // Nobody took a reader: the upload is refused on the header alone.
    expect(request.bodyUsed).toBe(false);
    expect(state.cancelled).toBe(false);
  });

  it("a string body over the limit with its Content-Length → payload_too_large", async () => {
    const body = "x".repeat(LIMIT + 1);
    await tooLarge(post(body, { "content-length": String(body.length) }));
  });

  it("a streamed body without Content-Length over the limit → payload_too_large, and the stream is cancelled", async () => {
    const { stream, state } = chunkedStream(split(new Uint8Array(LIMIT * 4).fill(0x61), 100));
    const request = post(stream);
    expect(request.headers.get("content-length")).toBeNull();
    await tooLarge(request);
    expect(state.cancelled).toBe(true);
    // Cut off as soon as the limit is passed, not after reading everything.
    expect(state.pulled).toBeLessThan(20);
  });

  it("a body that never ends is cut off at the limit", async () => {
    const { stream, state } = endlessStream();
    await tooLarge(post(stream));
    expect(state.cancelled).toBe(true);
  });

  it("a Content-Length that lies (declares less than is sent) does not get past the limit", async () => {
    const { stream } = chunkedStream(split(new Uint8Array(LIMIT * 2).fill(0x61), 256));
    await tooLarge(post(stream, { "content-length": "10" }));
  });

  it("the limit counts UTF-8 bytes, not characters", async () => {
    // 400 × "€" is 400 characters but 1,200 bytes.
    const bytes = encoder.encode("€".repeat(400));
    const { stream } = chunkedStream(split(bytes, 100));
    await tooLarge(post(stream));
  });

  it.each([
    ["one chunk", 0],
    ["chunks of 1 byte", 1],
    ["chunks of 7 bytes (multi-byte characters split across chunks)", 7],
    ["chunks of 100 bytes", 100],
  ])("a streamed body of exactly the limit is returned intact: %s", async (_label, chunkSize) => {
    // Trim to exactly LIMIT bytes without cutting a character in half.
    let body = "";
    for (const char of `{"events":[{"name":"€ü😀 ${"z".repeat(LIMIT)}`) {
      if (encoder.encode(body + char).length > LIMIT) break;
      body += char;
    }
    body += "z".repeat(LIMIT - encoder.encode(body).length);
    expect(encoder.encode(body).length).toBe(LIMIT);
    const bytes = encoder.encode(body);
    const { stream } = chunkedStream(chunkSize === 0 ? [bytes] : split(bytes, chunkSize));
    await expect(readBody(post(stream), LIMIT)).resolves.toEqual({ text: body, bytes: LIMIT });
  });

  it("a body at the limit with a matching Content-Length is returned intact", async () => {
    const body = "y".repeat(LIMIT);
    await expect(readBody(post(body, { "content-length": String(LIMIT) }), LIMIT)).resolves.toEqual({
      text: body,
      bytes: LIMIT,
    });
  });

  it("the ingest limit itself: 500 KB passes, one byte more does not", async () => {
    const max = INGEST_LIMITS.maxBodyBytes;
    const ok = new Uint8Array(max).fill(0x62);
    const read = await readBody(post(chunkedStream(split(ok, 64 * 1024)).stream), max);
    expect(read.text).toHaveLength(max);
    expect(read.bytes).toBe(max);
    const over = new Uint8Array(max + 1).fill(0x62);
    await tooLarge(post(chunkedStream(split(over, 64 * 1024)).stream), max);
  });

  it("no body → empty string", async () => {
    await expect(readBody(post(null), LIMIT)).resolves.toEqual({ text: "", bytes: 0 });
  });
});

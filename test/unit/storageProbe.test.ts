import { describe, expect, test } from "vitest";
import { classifyS3Error, probeKey } from "../../functions/storageConfigs/probe";

// How a storage check names what went wrong: the S3 SDK's error (its name and HTTP status) mapped to one
// stable code, and nothing of the error's message carried over.

const s3Error = (name: string, httpStatusCode: number, message = "irrelevant") =>
  Object.assign(new Error(message), { name, $metadata: { httpStatusCode } });

describe("classifyS3Error", () => {
  const cases: [unknown, ReturnType<typeof classifyS3Error>][] = [
    [
      s3Error("InvalidAccessKeyId", 403),
      { code: "credentials_rejected", providerCode: "InvalidAccessKeyId", httpStatus: 403 },
    ],
    [
      s3Error("SignatureDoesNotMatch", 403),
      { code: "credentials_rejected", providerCode: "SignatureDoesNotMatch", httpStatus: 403 },
    ],
    [
      s3Error("ExpiredToken", 400),
      { code: "credentials_rejected", providerCode: "ExpiredToken", httpStatus: 400 },
    ],
    [s3Error("AccessDenied", 403), { code: "access_denied", providerCode: "AccessDenied", httpStatus: 403 }],
    // A 403 without an S3 error name (an empty body, a proxy's page) is still a refusal to write.
    [s3Error("403", 403), { code: "access_denied", providerCode: null, httpStatus: 403 }],
    [
      s3Error("Unauthorized", 401),
      { code: "credentials_rejected", providerCode: "Unauthorized", httpStatus: 401 },
    ],
    [
      s3Error("NoSuchBucket", 404),
      { code: "bucket_not_found", providerCode: "NoSuchBucket", httpStatus: 404 },
    ],
    [
      s3Error("InternalError", 500),
      { code: "unexpected_response", providerCode: "InternalError", httpStatus: 500 },
    ],
    [new TypeError("fetch failed"), { code: "endpoint_unreachable", providerCode: null, httpStatus: null }],
    [
      Object.assign(new Error("The operation timed out"), { name: "TimeoutError" }),
      { code: "endpoint_unreachable", providerCode: null, httpStatus: null },
    ],
    ["a string", { code: "endpoint_unreachable", providerCode: null, httpStatus: null }],
  ];
  for (const [error, expected] of cases) {
    test(`${(error as Error).name ?? error} → ${expected.code}`, () => {
      expect(classifyS3Error(error)).toEqual(expected);
    });
  }

  test("an error name that is not a plain word is not passed on", () => {
    const odd = s3Error("Bad https://x/?secret=1", 418);
    expect(classifyS3Error(odd)).toEqual({
      code: "unexpected_response",
      providerCode: null,
      httpStatus: 418,
    });
  });
});

test("the probe object sits under the config's prefix", () => {
  expect(probeKey("layers/generated/", "abc")).toBe("layers/generated/layers-storage-check/abc.txt");
  expect(probeKey("", "abc")).toBe("layers-storage-check/abc.txt");
});

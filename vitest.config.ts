import { defineConfig } from "vitest/config";
import { TEST_WORKERS } from "./test/support/testWorkers";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    reporters: ["default", "./test/support/slowestFiles.ts"],
    // Two files at a time on two cores (one workerd each), each worker on its own database; a file's tests
    // still run one after another. Workers are not isolated per file: each keeps its imported modules
    // (Miniflare, the AWS SDK…) from one file to the next instead of loading them again for every file.
    maxWorkers: TEST_WORKERS,
    isolate: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The AWS SDK (test/support/s3.ts) warns on Node 20 that its releases after January 2027 need Node 22.
    // The SDK is pinned and package.json says Node 20: a notice for whoever upgrades, not for every run.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
  },
});

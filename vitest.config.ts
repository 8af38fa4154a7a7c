import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    reporters: ["default", "./test/support/slowestFiles.ts"],
    // Files run one after another: two cores, one workerd per file, one shared database.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The AWS SDK (test/support/s3.ts) warns on Node 20 that its releases after January 2027 need Node 22.
    // The SDK is pinned and package.json says Node 20: a notice for whoever upgrades, not for every run.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
  },
});

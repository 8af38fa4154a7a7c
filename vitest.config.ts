import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    reporters: ["default", "./test/support/slowestFiles.ts"],
    // Files run one after another: two cores, one workerd per file, one shared database.
    fileParallelism: false,
    testTimeout: 60_000,
    // The tests' own S3 clients run in Node 20: the AWS SDK's notice that later versions need Node 22 is
    // noise in every file's output (the Workers' copy runs in workerd and never prints it).
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    hookTimeout: 60_000,
  },
});

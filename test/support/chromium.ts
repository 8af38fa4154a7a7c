import { type Browser, chromium } from "playwright-core";

// Debian's Chromium (installed by .ci/run when missing), driven by playwright-core, which downloads nothing.
// Flags for a closed network (GUIDE section 6): no background traffic, no QUIC, no sandbox (root).
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** A headless Chromium with a fresh profile directory of its own, removed on close(). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
}

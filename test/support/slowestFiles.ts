import path from "node:path";
import type { Reporter, TestModule } from "vitest/node";

/**
 * Prints the ten slowest test files at the end of a run (collection, hooks and tests together), so a run
 * creeping towards its time budget shows where the time goes. Beside the default reporter, not instead.
 */
export default class SlowestFiles implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const rows = modules
      .map((m) => {
        const d = m.diagnostic();
        return { file: path.relative(process.cwd(), m.moduleId), ms: d.collectDuration + d.duration };
      })
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 10);
    if (rows.length === 0) return;
    const total = modules.reduce(
      (sum, m) => sum + m.diagnostic().collectDuration + m.diagnostic().duration,
      0,
    );
    console.log(`\nSlowest test files (of ${modules.length}, ${(total / 1000).toFixed(0)} s in all):`);
    for (const r of rows) console.log(`  ${(r.ms / 1000).toFixed(1).padStart(6)} s  ${r.file}`);
  }
}

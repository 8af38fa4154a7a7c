import { resolveSdkKey } from "../../functions/ingest/resolveSdkKey";
import { createOrganization } from "../../functions/org/createOrganization";
import { createProject } from "../../functions/projects/store";
import { createSdkKey } from "../../functions/sdkKeys/store";
import { type Db, withTenant } from "../../shared/db";
import { sha256Hex } from "../../shared/hash";

/** Local development only: a fixed, well-known key, so the README's curl works as printed. */
export const DEMO = {
  orgId: "org_demo",
  projectId: "proj_demo",
  sdkKey: "lp_pk_demoLocalDevelopmentKeyOnly00000",
  apiKey: "lp_test_demoLocalDevelopmentOwnerKey0000",
} as const;

/**
 * Whether a database is on this machine. The demo keys are public (they are in the README): they are seeded
 * only into the embedded database or a server on localhost, never into one others can reach.
 */
export function isLocalDatabase(url: string): boolean {
  const host = new URL(url).hostname;
  return host === "" || host === "localhost" || /^127\./.test(host) || host === "::1" || host === "[::1]";
}

/** Creates the demo org, project and SDK key unless they exist. Idempotent. */
export async function seedDemo(db: Db): Promise<typeof DEMO> {
  if (await resolveSdkKey(db, await sha256Hex(DEMO.sdkKey))) return DEMO;
  await createOrganization(db, { id: DEMO.orgId, name: "Demo org" });
  await withTenant(db, DEMO.orgId, async (tx) => {
    await createProject(tx, DEMO.orgId, { id: DEMO.projectId, name: "Demo app" });
    await createSdkKey(tx, DEMO.orgId, DEMO.projectId, { secret: DEMO.sdkKey });
    await tx
      .insertInto("api_keys")
      .values({
        id: "key_demo",
        org_id: DEMO.orgId,
        name: "Demo owner key (local only)",
        role: "owner",
        mode: "test",
        key_sha256: await sha256Hex(DEMO.apiKey),
        display_prefix: DEMO.apiKey.slice(0, 12),
        created_at: new Date(),
      })
      .execute();
  });
  return DEMO;
}

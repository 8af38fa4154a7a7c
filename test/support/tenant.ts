import { createOrganization } from "../../functions/org/createOrganization";
import { createProject } from "../../functions/projects/store";
import { createSdkKey } from "../../functions/sdkKeys/store";
import { type Db, withTenant } from "../../shared/db";
import { rememberSecret } from "./issuedSecrets";

export interface TestTenant {
  orgId: string;
  projectId: string;
  sdkKey: string;
  sdkKeyId: string;
}

/** A fresh org + project + SDK key, so every test owns its data and tests never see each other's rows. */
export async function createTenant(
  db: Db,
  options: { eventRetentionDays?: number } = {},
): Promise<TestTenant> {
  const org = await createOrganization(db, { name: "Test org" });
  const { project, key } = await withTenant(db, org.id, async (tx) => {
    const project = await createProject(tx, org.id, { name: "Test app", ...options });
    return { project, key: await createSdkKey(tx, org.id, project.id) };
  });
  rememberSecret(key.secret);
  return { orgId: org.id, projectId: project.id, sdkKey: key.secret, sdkKeyId: key.id };
}

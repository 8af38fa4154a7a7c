import { type Db, withTenant } from "../../shared/db";
import type { Role } from "../../shared/roles";
import { type CreatedApiKey, createApiKey, type KeyMode } from "../apiKeys/store";
import { writeAudit } from "../audit/writeAudit";
import { createOrganization, type Organization } from "./createOrganization";

/**
 * A fresh install has no key to call the API with: this creates an org and its first owner key (or, for an
 * existing org, another key). Used by `npm run bootstrap`, the dev seed and tests.
 */
export async function bootstrapOrg(
  db: Db,
  input: {
    orgName: string;
    orgId?: string;
    keyName?: string;
    role?: Role;
    mode?: KeyMode;
    projectId?: string;
  },
  now: Date = new Date(),
): Promise<{ org: Organization; key: CreatedApiKey }> {
  const org = input.orgId
    ? { id: input.orgId, name: input.orgName }
    : await createOrganization(db, { name: input.orgName });
  const key = await withTenant(db, org.id, async (tx) => {
    const created = await createApiKey(
      tx,
      org.id,
      {
        name: input.keyName ?? "Owner key",
        role: input.role ?? "owner",
        mode: input.mode ?? "live",
        projectId: input.projectId ?? null,
      },
      now,
    );
    await writeAudit(
      tx,
      org.id,
      {
        actor: { type: "system", id: "bootstrap" },
        action: "api_key.created",
        resourceType: "api_key",
        resourceId: created.id,
        requestId: null,
        after: { ...created, secret: undefined },
      },
      now,
    );
    return created;
  });
  return { org, key };
}

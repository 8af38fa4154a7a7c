import { bootstrapOrg } from "../../functions/org/bootstrapOrg";
import type { Db } from "../../shared/db";
import type { Role } from "../../shared/roles";
import { rememberSecret } from "./issuedSecrets";

export interface ApiTenant {
  orgId: string;
  keyId: string;
  secret: string;
}

/** A fresh org with one API key (owner unless said otherwise). */
export async function createApiTenant(db: Db, role: Role = "owner"): Promise<ApiTenant> {
  const { org, key } = await bootstrapOrg(db, { orgName: "API test org", role });
  rememberSecret(key.secret);
  return { orgId: org.id, keyId: key.id, secret: key.secret };
}

/** Another key in an existing org. */
export async function addApiKey(db: Db, orgId: string, role: Role, projectId?: string): Promise<ApiTenant> {
  const { key } = await bootstrapOrg(db, {
    orgName: "",
    orgId,
    role,
    keyName: `${role} key`,
    ...(projectId ? { projectId } : {}),
  });
  rememberSecret(key.secret);
  return { orgId, keyId: key.id, secret: key.secret };
}

export function bearer(secret: string, extra: Record<string, string> = {}): Record<string, string> {
  return { Authorization: `Bearer ${secret}`, "Content-Type": "application/json", ...extra };
}

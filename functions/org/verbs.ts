import { audit } from "../audit/writeAudit";
import { found, type VerbContext } from "../context";
import { getOrg, type Org, updateOrg } from "./store";

/** The org as the API shows it and as its audit rows record it. */
export function orgJson(o: Org) {
  return { id: o.id, object: "org" as const, name: o.name, createdAt: o.createdAt.toISOString() };
}

/** The caller's own org. A key whose org is gone is rejected at authentication (keys cascade): defensive. */
export async function ownOrg(ctx: VerbContext): Promise<Org> {
  return found(await getOrg(ctx.db, ctx.orgId), "No such org.");
}

export async function changeOrg(ctx: VerbContext, patch: { name?: string | undefined }): Promise<Org> {
  const changed = found(await updateOrg(ctx.db, ctx.orgId, patch), "No such org.");
  await audit(
    ctx,
    "org.updated",
    { type: "org", id: ctx.orgId },
    { before: orgJson(changed.before), after: orgJson(changed.after) },
  );
  return changed.after;
}

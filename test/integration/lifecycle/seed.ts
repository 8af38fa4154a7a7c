import { createHash, randomUUID } from "node:crypto";
import { sql } from "kysely";
import { auditObjectKey } from "../../../functions/archive/auditKeys";
import { encodeNdjsonGz } from "../../../functions/archive/ndjson";
import { deadLetterKey } from "../../../functions/deadLetters/store";
import { readCatalogue } from "../../../functions/lifecycle/catalogue";
import type { Db } from "../../../shared/db";
import type { LocalS3 } from "../../support/s3";
import { createTenant, type TestTenant } from "../../support/tenant";

// An org with rows in every tenant table and objects in every bucket the system owns, written as the owner
// (no code path makes all of them at once). The lifecycle tests delete it and look for anything left.

const sha = (s: string) => createHash("sha256").update(s).digest("hex");

export interface SeededOrg extends TestTenant {
  /** A second project of the org (a project deletion must leave it alone). */
  otherProjectId: string;
  /** Every id and digest of the org a scan must no longer find once the org is deleted. */
  needles: string[];
  /** Rows written per table, for the project's share (`inProject`) and in all. */
  rows: Record<string, number>;
  inProject: Record<string, number>;
  /** Object keys per bucket class. */
  objects: { media: string[]; exports: string[]; archive: string[]; deadLetters: string[] };
  /** Of them, the project's (media under it, dead letters of it). */
  projectObjects: number;
}

/**
 * Seeds one org. Every table of the catalogue that has an org_id column gets at least one row of it, and the
 * main project (`projectId`) gets rows in every table that has a project_id; `otherProjectId` gets events
 * and users too, so a project deletion can be shown to leave them.
 */
export async function seedOrg(db: Db, s3: LocalS3, label: string): Promise<SeededOrg> {
  const t = await createTenant(db);
  const org = t.orgId;
  const p = t.projectId;
  const other = `proj_${label}${randomUUID().replaceAll("-", "").slice(0, 12)}`;
  const u = (n: number) => `${label}-user-${n}-${randomUUID().slice(0, 8)}`;
  const users = [u(1), u(2), u(3)];
  const emails = users.map((x) => sha(`${x}@example.com`));
  const phones = users.map((x) => sha(`+4915${x.length}${x}`));
  const id = (prefix: string) => `${prefix}_${label}${randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const now = new Date();
  const q = (query: ReturnType<typeof sql>) => query.execute(db);

  await q(sql`insert into projects (id, org_id, name) values (${other}, ${org}, 'Other app')`);
  await q(sql`insert into sdk_keys (id, org_id, project_id, key_sha256, display_prefix)
    values (${id("sdkkey")}, ${org}, ${other}, ${sha(randomUUID())}, 'lp_pub_x')`);
  const apiKeyId = id("key");
  await q(sql`insert into api_keys (id, org_id, name, role, project_id, mode, key_sha256, display_prefix)
    values (${apiKeyId}, ${org}, 'seed', 'owner', null, 'live', ${sha(randomUUID())}, 'lp_live_x'),
           (${id("key")}, ${org}, 'restricted', 'developer', ${p}, 'live', ${sha(randomUUID())}, 'lp_live_y')`);
  await q(sql`insert into members (id, org_id, email, name, role)
    values (${id("mem")}, ${org}, ${`${label}-member@example.com`}, 'Seed member', 'owner')`);

  // Events: three per user in the main project, two in the other.
  for (const [project, perUser] of [
    [p, 3],
    [other, 2],
  ] as const) {
    for (const [i, user] of users.entries()) {
      for (let n = 0; n < perUser; n++) {
        await q(sql`insert into sdk_events (org_id, project_id, event_id, name, user_id, ts, received_at,
            email_sha256, phone_sha256, anonymous_id, properties)
          values (${org}, ${project}, ${id("evt")}, 'purchase', ${user}, ${now}, ${now}, ${emails[i]},
            ${phones[i]}, ${`anon-${user}`}, '{"plan":"pro"}')`);
      }
      await q(sql`insert into sdk_users (org_id, project_id, user_id, first_seen_at, last_seen_at, email_sha256,
          phone_sha256) values (${org}, ${project}, ${user}, ${now}, ${now}, ${emails[i]}, ${phones[i]})`);
    }
  }
  await q(sql`insert into event_daily_counts (org_id, project_id, day, event_name, country, count)
    values (${org}, ${p}, current_date, 'purchase', 'DE', 9), (${org}, ${other}, current_date, 'purchase', 'DE', 6)`);
  await q(sql`insert into sdk_identity_links (org_id, project_id, anonymous_id, user_id, first_seen_at, linked_at)
    values (${org}, ${p}, ${`anon-${users[0]}`}, ${users[0]}, ${now}, ${now})`);
  await q(sql`insert into apple_attributions (org_id, project_id, user_id, event_id, attribution, attributed_at)
    values (${org}, ${p}, ${users[0]}, ${id("evt")}, true, ${now})`);
  await q(sql`insert into destinations (org_id, project_id, kind, config)
    values (${org}, ${p}, 'meta', '{"datasetId":"123456789012345"}')`);
  await q(sql`insert into relay_deliveries (org_id, project_id, batch_id, destination, event_count, status,
      first_attempt_at, last_attempt_at)
    values (${org}, ${p}, ${id("batch")}, 'meta', 1, 'delivered', ${now}, ${now})`);
  await q(sql`insert into relay_dead_letters (org_id, project_id, batch_id, destination, reason, events, dead_at)
    values (${org}, ${p}, ${id("batch")}, 'meta', 'rejected',
      ${JSON.stringify([{ userId: users[1], emailSha256: emails[1] }])}::jsonb, ${now})`);
  const delReq = id("delreq");
  await q(sql`insert into deletion_requests (id, org_id, project_id, user_id_sha256, subject_sha256, status,
      requested_at, requested_by, finished_at)
    values (${delReq}, ${org}, ${p}, ${sha(users[2] as string)}, ${sha(users[2] as string)}, 'completed', ${now},
      'api_key:seed', ${now})`);
  await q(sql`insert into suppressions (org_id, project_id, identifier_type, identifier_sha256, deletion_request_id,
      created_at) values (${org}, ${p}, 'user_id', ${sha(users[2] as string)}, ${delReq}, ${now})`);
  await q(sql`insert into project_layers (org_id, project_id, layer) values (${org}, ${p}, 'content')`);
  const storage = id("stor");
  await q(sql`insert into storage_configs (id, org_id, name, endpoint, region, bucket, access_key_id,
      secret_ciphertext, secret_key_id, secret_last4)
    values (${storage}, ${org}, 'bucket', 'https://s3.example.com', 'us-east-1', 'partner-bucket', 'AKIASEED',
      'ciphertext', 'k1', 'abcd')`);
  const job = id("cjob");
  await q(sql`insert into content_jobs (id, org_id, project_id, kind, status, storage_mode, async, finished_at)
    values (${job}, ${org}, ${p}, 'image', 'succeeded', 'cloud', true, ${now})`);
  const container = id("cont");
  const mediaKey = `media/${org}/${p}/${container}`;
  await q(sql`insert into content_containers (id, org_id, project_id, job_id, kind, storage_mode, bucket, object_key,
      size_bytes, sha256, media_type, provider, model)
    values (${container}, ${org}, ${p}, ${job}, 'image', 'cloud', 'layers-media', ${mediaKey}, 5, ${sha("media")},
      'image/png', 'local', 'local-1')`);
  const ads = id("ads");
  await q(sql`insert into ads_content (id, org_id, name) values (${ads}, ${org}, 'Spring sale')`);
  await q(sql`insert into ads_content_containers (org_id, ads_content_id, container_id, position)
    values (${org}, ${ads}, ${container}, 0)`);
  await q(
    sql`insert into project_ads_content (org_id, project_id, ads_content_id) values (${org}, ${p}, ${ads})`,
  );
  const endpoint = id("whe");
  const orgEndpoint = id("whe");
  await q(sql`insert into webhook_endpoints (id, org_id, project_id, url, secret_ciphertext, secret_key_id)
    values (${endpoint}, ${org}, ${p}, 'https://hooks.example.com/a', 'c', 'k1'),
           (${orgEndpoint}, ${org}, null, 'https://hooks.example.com/b', 'c', 'k1')`);
  const message = id("msg");
  const orgMessage = id("msg");
  await q(sql`insert into webhook_messages (id, org_id, project_id, event_type, payload)
    values (${message}, ${org}, ${p}, 'project.archived', '{}'),
           (${orgMessage}, ${org}, null, 'api_key.created', '{}')`);
  // The org-level endpoint subscribed to the project's message: a row reached through either key.
  await q(sql`insert into webhook_deliveries (message_id, endpoint_id, org_id)
    values (${message}, ${orgEndpoint}, ${org}), (${orgMessage}, ${orgEndpoint}, ${org})`);
  await q(sql`insert into webhook_attempts (id, org_id, endpoint_id, message_id, duration_ms, status_code)
    values (${id("wha")}, ${org}, ${orgEndpoint}, ${message}, 12, 200)`);
  await q(sql`insert into audit_log (id, org_id, occurred_at, actor_type, actor_id, action, resource_type, resource_id)
    values (${id("aud")}, ${org}, ${now}, 'api_key', ${apiKeyId}, 'project.created', 'project', ${p})`);
  await q(sql`insert into idempotency_keys (org_id, idempotency_key, request_sha256, state, created_at, api_key_id)
    values (${org}, ${id("idem")}, ${sha("req")}, 'in_progress', ${now}, ${apiKeyId})`);
  await q(sql`insert into request_logs (request_id, org_id, api_key_id, method, route, status, latency_ms, occurred_at)
    values (${id("req")}, ${org}, ${apiKeyId}, 'GET', '/v1/org', 200, 3, ${now})`);
  await q(sql`insert into project_deletions (id, org_id, project_id, status, requested_at, requested_by, finished_at)
    values (${id("pdel")}, ${org}, ${id("proj")}, 'completed', ${now}, 'api_key:seed', ${now})`);

  // Objects: media of the project and a staging copy, an export, an archive day, a dead letter of each kind for the project.
  const bytes = (s: string) => new TextEncoder().encode(s);
  const exportId = id("exp");
  const exportKey = `exports/${org}/${exportId}/manifest.json`;
  const archiveDay = now.toISOString().slice(0, 10);
  const archiveKey = auditObjectKey(org, archiveDay);
  // The rows that point at those objects: a finished export (its archive) and the cold audit index's day.
  await q(sql`insert into org_exports (id, org_id, status, include_events, requested_by, object_key, size_bytes,
      finished_at, expires_at)
    values (${exportId}, ${org}, 'succeeded', true, ${`api_key:${apiKeyId}`}, ${exportKey}, 10, ${now},
      ${new Date(now.getTime() + 7 * 86_400_000)})`);
  await q(sql`insert into audit_archive_objects (org_id, day, object_key, row_count)
    values (${org}, ${archiveDay}::date, ${archiveKey}, 1)`);
  await s3.media.put(mediaKey, bytes(`media of ${users[0]}`), "image/png");
  // A partner-bucket job's staging copy left behind (its job ended while our bucket was unreachable).
  await s3.media.put(`staging/${org}/${p}/${id("cjob")}`, bytes(`staged for ${users[0]}`), "image/png");
  await s3.exports.put(exportKey, bytes(JSON.stringify({ org, users })), "application/json");
  await s3.storage.put(
    archiveKey,
    await encodeNdjsonGz([{ orgId: org, actorId: apiKeyId }]),
    "application/gzip",
  );
  const deadLetters: string[] = [];
  for (const kind of ["events", "relay"] as const) {
    const key = deadLetterKey({ kind, deadAt: now.toISOString(), orgId: org, projectId: p, id: id("dl") });
    await s3.deadLetters.put(
      key,
      bytes(JSON.stringify({ orgId: org, userId: users[1] })),
      "application/json",
    );
    deadLetters.push(key);
  }

  const counts = await countRows(db, org, p);
  return {
    ...t,
    otherProjectId: other,
    needles: [
      org,
      p,
      other,
      ...users,
      ...emails,
      ...phones,
      apiKeyId,
      container,
      job,
      storage,
      ads,
      endpoint,
    ],
    rows: counts.all,
    inProject: counts.project,
    objects: { media: [mediaKey], exports: [exportKey], archive: [archiveKey], deadLetters },
    projectObjects: 1 + deadLetters.length,
  };
}

/** Rows of the org per table (every table with org_id, and organizations), and of the project. */
export async function countRows(
  db: Db,
  orgId: string,
  projectId: string,
): Promise<{ all: Record<string, number>; project: Record<string, number> }> {
  const catalogue = await readCatalogue(db);
  const all: Record<string, number> = {};
  const project: Record<string, number> = {};
  for (const t of catalogue.tables) {
    if (t.name === "organizations") {
      all[t.name] = 1;
      continue;
    }
    if (!t.hasOrgId || t.name === "org_deletions") continue;
    const { rows } = await sql<{ n: string; p: string }>`
      select count(*) as n, ${t.hasProjectId ? sql`count(*) filter (where project_id = ${projectId})` : sql`0`} as p
      from ${sql.table(t.name)} where org_id = ${orgId}`.execute(db);
    all[t.name] = Number(rows[0]?.n ?? 0);
    if (t.hasProjectId) project[t.name] = Number(rows[0]?.p ?? 0);
  }
  return { all, project };
}

/**
 * Waits until the API's request-log row of one request (its X-Request-Id) is in the database. The API writes
 * request logs in batches after the answer (workers/common/requestLogBatcher.ts: up to its delay plus one
 * write later), so a count taken right after an answer may or may not hold the request's own row yet.
 */
export async function requestLogged(db: Db, requestId: string | null): Promise<void> {
  if (!requestId) throw new Error("the answer has no X-Request-Id");
  for (let i = 0; i < 500; i++) {
    const row = await db
      .selectFrom("request_logs")
      .select("request_id")
      .where("request_id", "=", requestId)
      .executeTakeFirst();
    if (row) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`request ${requestId} was never logged`);
}

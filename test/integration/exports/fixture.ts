import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import { auditObjectKey } from "../../../functions/archive/auditKeys";
import { encodeNdjsonGz } from "../../../functions/archive/ndjson";
import { parseKeyring } from "../../../functions/destinations/crypto";
import { putDestination } from "../../../functions/destinations/store";
import { createProject } from "../../../functions/projects/store";
import { createSdkKey } from "../../../functions/sdkKeys/store";
import { type Db, withTenant } from "../../../shared/db";
import { type Api, api } from "../../support/api";
import { type ApiTenant, addApiKey, createApiTenant } from "../../support/apiTenant";
import { rememberSecret } from "../../support/issuedSecrets";
import type { LocalS3 } from "../../support/s3";
import { sha256 } from "../../support/sha256";
import { type Stack, TEST_DESTINATION_KEYRING } from "../../support/stack";

/** An org with at least one row in every tenant table, two projects, an object in the media bucket. */
export interface FilledOrg {
  orgId: string;
  owner: ApiTenant;
  as: Api;
  projectId: string;
  otherProjectId: string;
  /** Values that must never be in an archive: key hashes, ciphertexts. */
  storedSecrets: string[];
  mediaBytes: Uint8Array;
  containerId: string;
  /** Ids of the cold (archived) audit rows. */
  coldAuditIds: string[];
}

const hex = (s: string) => sha256(s);

/**
 * Fills a fresh org. Rows with secrets go through the API or the functions it uses (so their secrets are
 * issued and remembered for the end-of-run scan); the rest are plain inserts as the owner.
 */
export async function fillOrg(
  stack: Stack,
  s3: LocalS3,
  options: { events?: number } = {},
): Promise<FilledOrg> {
  const owner = await createApiTenant(stack.db, "owner");
  const orgId = owner.orgId;
  const as = api(stack, owner.secret);
  const db = stack.db;
  const now = new Date();
  const [project, other] = await withTenant(db, orgId, async (tx) => [
    await createProject(tx, orgId, { name: "Export app" }),
    await createProject(tx, orgId, { name: "Other app" }),
  ]);
  const projectId = project.id;
  const otherProjectId = other.id;
  await addApiKey(db, orgId, "developer");
  const sdk = await withTenant(db, orgId, (tx) => createSdkKey(tx, orgId, projectId));
  rememberSecret(sdk.secret);
  const token = `EAAexport${randomUUID().replaceAll("-", "")}`;
  rememberSecret(token);
  await withTenant(db, orgId, (tx) =>
    putDestination(
      tx,
      orgId,
      projectId,
      {
        kind: "meta",
        enabled: true,
        datasetId: "123456789012345",
        accessToken: token,
        testEventCode: null,
        sendDeviceIds: false,
      },
      parseKeyring(TEST_DESTINATION_KEYRING),
      now,
    ),
  );
  const endpoint = await as.post<unknown, { id: string; secret: string }>("/v1/webhook-endpoints", {
    url: "http://127.0.0.1:9/export-hook",
  });
  if (endpoint.status !== 201) throw new Error(endpoint.text);
  rememberSecret(endpoint.body.secret);
  const storage = await as.post<unknown, { id: string }>("/v1/storage-configs", {
    endpoint: s3.endpoint,
    region: "us-east-1",
    bucket: "partner-bucket",
    forcePathStyle: true,
    accessKeyId: "EXPORTTESTACCESSKEY1",
    secretAccessKey: `exportSecret${randomUUID().replaceAll("-", "")}`,
  });
  if (storage.status !== 201) throw new Error(storage.text);
  const members = await as.post<unknown, { id: string }>("/v1/members", {
    email: "export-member@example.com",
    role: "developer",
  });
  if (members.status !== 201) throw new Error(members.text);

  const containerId = `cnt_${randomUUID().replaceAll("-", "").slice(0, 20)}`;
  const jobId = `cjob_${randomUUID().replaceAll("-", "").slice(0, 20)}`;
  const adsId = `ads_${randomUUID().replaceAll("-", "").slice(0, 20)}`;
  const messageId = `msg_${randomUUID().replaceAll("-", "")}`;
  const mediaBytes = new TextEncoder().encode(`png-bytes-of-${containerId}`);
  const mediaKey = `media/${orgId}/${projectId}/${containerId}`;
  await s3.media.put(mediaKey, mediaBytes, "image/png");
  const user = `user-${randomUUID()}`;
  const events = options.events ?? 5;
  await sql`
    insert into project_layers (org_id, project_id, layer) values (${orgId}, ${projectId}, 'content');
    `.execute(db);
  await sql`insert into content_jobs (id, org_id, project_id, kind, status, storage_mode, async, provider, model,
      finished_at) values (${jobId}, ${orgId}, ${projectId}, 'image', 'succeeded', 'cloud', false, 'local',
      'local-1', now())`.execute(db);
  await sql`insert into content_containers (id, org_id, project_id, job_id, kind, storage_mode, bucket,
      object_key, size_bytes, sha256, media_type, provider, model) values (${containerId}, ${orgId},
      ${projectId}, ${jobId}, 'image', 'cloud', 'layers-media', ${mediaKey}, ${mediaBytes.length},
      ${hex(containerId)}, 'image/png', 'local', 'local-1')`.execute(db);
  await sql`insert into ads_content (id, org_id, name) values (${adsId}, ${orgId}, 'Spring')`.execute(db);
  await sql`insert into ads_content_containers (org_id, ads_content_id, container_id, position)
      values (${orgId}, ${adsId}, ${containerId}, 0)`.execute(db);
  await sql`insert into project_ads_content (org_id, project_id, ads_content_id)
      values (${orgId}, ${projectId}, ${adsId})`.execute(db);
  await sql`insert into deletion_requests (id, org_id, project_id, user_id_sha256, subject_sha256, status,
      requested_at, finished_at, requested_by) values (${`delreq_${randomUUID().slice(0, 8)}`}, ${orgId},
      ${projectId}, ${hex("gone")}, ${hex("gone")}, 'completed', now(), now(), ${owner.keyId})`.execute(db);
  await sql`insert into suppressions (org_id, project_id, identifier_type, identifier_sha256, created_at)
      values (${orgId}, ${projectId}, 'user_id', ${hex("gone")}, now())`.execute(db);
  await sql`insert into request_logs (request_id, org_id, api_key_id, method, route, status, latency_ms,
      occurred_at) values (${`req_${randomUUID()}`}, ${orgId}, ${owner.keyId}, 'GET', '/v1/org', 200, 3,
      now())`.execute(db);
  await sql`insert into relay_deliveries (org_id, project_id, batch_id, destination, event_count, status,
      first_attempt_at, last_attempt_at) values (${orgId}, ${projectId}, ${`b-${randomUUID()}`}, 'meta', 1,
      'delivered', now(), now())`.execute(db);
  await sql`insert into relay_dead_letters (org_id, project_id, batch_id, destination, reason, events, dead_at)
      values (${orgId}, ${projectId}, ${`dl-${randomUUID()}`}, 'meta', 'rejected', '[]', now())`.execute(db);
  await sql`insert into event_daily_counts (org_id, project_id, day, event_name, country, count)
      values (${orgId}, ${projectId}, current_date, 'purchase', 'DE', 3),
             (${orgId}, ${otherProjectId}, current_date, 'purchase', 'FR', 1)`.execute(db);
  for (let i = 0; i < events; i++) {
    await sql`insert into sdk_events (org_id, project_id, event_id, name, user_id, ts, received_at, properties)
        values (${orgId}, ${i % 2 === 0 ? projectId : otherProjectId}, ${`evt-${i}-${randomUUID()}`},
        'purchase', ${user}, now(), now(), '{"value": 1}')`.execute(db);
  }
  await sql`insert into sdk_users (org_id, project_id, user_id, first_seen_at, last_seen_at)
      values (${orgId}, ${projectId}, ${user}, now(), now())`.execute(db);
  await sql`insert into sdk_identity_links (org_id, project_id, anonymous_id, user_id, first_seen_at, linked_at)
      values (${orgId}, ${projectId}, ${`anon-${randomUUID()}`}, ${user}, now(), now())`.execute(db);
  await sql`insert into apple_attributions (org_id, project_id, user_id, event_id, attribution, attributed_at)
      values (${orgId}, ${projectId}, ${user}, 'evt-0', true, now())`.execute(db);
  await sql`insert into webhook_messages (id, org_id, project_id, event_type, payload)
      values (${messageId}, ${orgId}, ${projectId}, 'export.tested', '{}')`.execute(db);
  await sql`insert into webhook_deliveries (message_id, endpoint_id, org_id)
      values (${messageId}, ${endpoint.body.id}, ${orgId})`.execute(db);
  await sql`insert into webhook_attempts (id, org_id, endpoint_id, message_id, duration_ms)
      values (${`wha_${randomUUID().slice(0, 8)}`}, ${orgId}, ${endpoint.body.id}, ${messageId}, 5)`.execute(
    db,
  );
  // A finished project deletion of a third project (gone already, so no foreign key to it), as the cascade
  // leaves it: counts of names and numbers, no resume cursor the export would have to leave out.
  await sql`insert into project_deletions (id, org_id, project_id, status, counts, requested_at, requested_by,
      finished_at) values (${`pdel_${randomUUID().replaceAll("-", "").slice(0, 16)}`}, ${orgId},
      ${`proj_gone${randomUUID().replaceAll("-", "").slice(0, 12)}`}, 'completed', '{"sdk_events": 2}', now(),
      ${`api_key:${owner.keyId}`}, now())`.execute(db);

  // The cold audit archive: two days of archived rows, as the archive job leaves them (object + index).
  const coldAuditIds: string[] = [];
  for (const day of ["2025-01-10", "2025-01-11"]) {
    const rows = [0, 1].map((i) => ({
      id: `aud_cold${day.replaceAll("-", "")}${i}`,
      org_id: orgId,
      occurred_at: `${day}T10:00:0${i}.000000Z`,
      actor_type: "api_key",
      actor_id: owner.keyId,
      action: "project.updated",
      resource_type: "project",
      resource_id: projectId,
      request_id: null,
      changes: {},
    }));
    coldAuditIds.push(...rows.map((r) => r.id));
    const key = auditObjectKey(orgId, day);
    await s3.storage.put(key, await encodeNdjsonGz(rows), "application/x-ndjson");
    await sql`insert into audit_archive_objects (org_id, day, object_key, row_count)
        values (${orgId}, ${day}::date, ${key}, ${rows.length})`.execute(db);
  }

  const storedSecrets = await secretsStoredFor(db, orgId);
  return {
    orgId,
    owner,
    as,
    projectId,
    otherProjectId,
    storedSecrets,
    mediaBytes,
    containerId,
    coldAuditIds,
  };
}

/** Every hash and ciphertext the org's rows hold: none may appear in an archive. */
async function secretsStoredFor(db: Db, orgId: string): Promise<string[]> {
  const { rows } = await sql<{ v: string }>`
    select key_sha256 as v from api_keys where org_id = ${orgId}
    union all select key_sha256 from sdk_keys where org_id = ${orgId}
    union all select token_ciphertext from destinations where org_id = ${orgId} and token_ciphertext is not null
    union all select secret_ciphertext from storage_configs where org_id = ${orgId}
    union all select secret_ciphertext from webhook_endpoints where org_id = ${orgId}
  `.execute(db);
  return rows.map((r) => r.v);
}

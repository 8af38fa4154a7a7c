import { createHash } from "node:crypto";
import { DeleteObjectsCommand, S3Client } from "@aws-sdk/client-s3";
import { sql } from "kysely";
import { CASCADE_ROWS_PER_RUN, runDeletions } from "../../functions/lifecycle/cascade";
import { createS3Store } from "../../functions/storage/objectStore";
import { maintenanceRoleUrl, roleUrl } from "../../scripts/local/migrate";
import { createNodeDb } from "../../scripts/local/node-db";
import type { Db } from "../../shared/db";
import { MEDIA_BUCKET } from "../support/s3";
import { createTenant, type TestTenant } from "../support/tenant";
import { startChild } from "./child";
import { type IngestWindow, ingestWhile } from "./ingestWhile";
import type { Resources } from "./resources";

// (l) Org deletion: an org of `events` events (two projects, their users) and `objects` media objects is
// erased by the Cron job's cascade (runDeletions: catalogue-driven, batches of CASCADE_BATCH_ROWS rows by
// tuple id counted on the receipt, objects listed a page at a time and deleted 1,000 per DeleteObjects
// request), run after run until done; against, in the same run, an org of the same size erased by plain
// statements (`DELETE … WHERE org_id = $1` per table, then the org row) and one bulk DeleteObjects per
// 1,000 keys. Meanwhile one connection keeps persisting 150-event messages for a third org (the consumer's
// path): its rate idle, during the cascade and during the plain delete. The S3 server runs in a process of
// its own (test/bench/s3.server.ts), so its file work does not stall the ingest being measured.

export interface OrgDeleteOptions {
  ownerUrl: string;
  events: number;
  objects: number;
}

export interface OrgDeleteFigures {
  cascade: {
    rows: number;
    objects: number;
    rowsMs: number;
    objectsMs: number;
    runs: number;
    ingest: IngestWindow;
  };
  plain: { rows: number; objects: number; rowsMs: number; objectsMs: number; ingest: IngestWindow };
  idle: IngestWindow;
}

async function load(db: Db, t: TestTenant, events: number, progress: (m: string) => void): Promise<string> {
  const second = `proj_bench${t.orgId.slice(-12)}`;
  await sql`insert into projects (id, org_id, name) values (${second}, ${t.orgId}, 'Second app')`.execute(db);
  const chunk = 250_000;
  for (let start = 0; start < events; start += chunk) {
    const end = Math.min(events, start + chunk);
    await sql`
      insert into sdk_events (org_id, project_id, event_id, name, user_id, ts, received_at, country, properties)
      select ${t.orgId}, case when g % 2 = 0 then ${t.projectId} else ${second} end, 'e-' || g, 'view',
             'user-' || (g % 50000), timestamptz '2026-01-01' + (g % 8640000) * interval '1 second',
             timestamptz '2026-06-01', 'DE', '{"plan":"pro"}'::jsonb
      from generate_series(${start + 1}::int, ${end}::int) g
    `.execute(db);
    progress(`(l) ${t.orgId}: ${end.toLocaleString("en-US")} of ${events.toLocaleString("en-US")} events`);
  }
  await sql`
    insert into sdk_users (org_id, project_id, user_id, first_seen_at, last_seen_at)
    select ${t.orgId}, case when g % 2 = 0 then ${t.projectId} else ${second} end, 'user-' || g,
           timestamptz '2026-01-01', timestamptz '2026-04-01'
    from generate_series(0, 49999) g
  `.execute(db);
  return second;
}

async function during<T>(
  db: Db,
  t: TestTenant,
  work: () => Promise<T>,
): Promise<{ value: T; ingest: IngestWindow }> {
  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const ingest = ingestWhile(db, t, done);
  await new Promise((resolve) => setTimeout(resolve, 300));
  try {
    const value = await work();
    finish();
    return { value, ingest: await ingest };
  } finally {
    finish();
  }
}

/** The media bucket on the bench's S3 server (test/bench/s3.server.ts), through the Workers' client code. */
function mediaStore(port: number) {
  return createS3Store({
    endpoint: `http://127.0.0.1:${port}`,
    bucket: MEDIA_BUCKET,
    region: "us-east-1",
    accessKeyId: "S3RVER",
    secretAccessKey: "S3RVER",
  });
}

export async function benchOrgDelete(
  resources: Resources,
  options: OrgDeleteOptions,
  progress: (m: string) => void,
): Promise<OrgDeleteFigures> {
  const owner = createNodeDb(options.ownerUrl, 2);
  const closeOwner = resources.add("org-delete owner pool", () => owner.destroy());
  const consumer = createNodeDb(roleUrl(options.ownerUrl, "layers_consumer"), 1);
  const closeConsumer = resources.add("org-delete consumer pool", () => consumer.destroy());
  const maintenance = createNodeDb(maintenanceRoleUrl(options.ownerUrl), 1);
  const closeMaintenance = resources.add("org-delete maintenance pool", () => maintenance.destroy());
  const s3Server = await startChild("test/bench/s3.server.ts", {});
  const closeS3 = resources.add("org-delete s3", () => s3Server.stop());
  const s3 = { endpoint: `http://127.0.0.1:${s3Server.port}`, media: mediaStore(s3Server.port) };
  try {
    await sql`select 1`.execute(maintenance);
    await sql`select 1`.execute(consumer);
    const cascadeOrg = await createTenant(owner);
    const plainOrg = await createTenant(owner);
    const ingestOrg = await createTenant(owner);
    await load(owner, cascadeOrg, options.events, progress);
    await load(owner, plainOrg, options.events, progress);
    progress(`(l) putting ${options.objects} media objects per org`);
    const body = new TextEncoder().encode("x".repeat(256));
    for (const t of [cascadeOrg, plainOrg]) {
      for (let start = 0; start < options.objects; start += 32) {
        await Promise.all(
          Array.from({ length: Math.min(32, options.objects - start) }, (_, i) =>
            s3.media.put(`media/${t.orgId}/${t.projectId}/c${start + i}`, body, "image/png"),
          ),
        );
      }
    }
    await sql`vacuum analyze sdk_events`.execute(owner);
    await sql`vacuum analyze sdk_users`.execute(owner);

    const idle = await ingestWhile(consumer, ingestOrg, new Promise((resolve) => setTimeout(resolve, 3_000)));

    // The cascade: the deletion as the API records it, then Cron runs until it completes.
    progress("(l) cascade: Cron runs until the org's deletion completes");
    const id = `odel_bench${Date.now()}`;
    await sql`insert into org_deletions (id, org_id, token_sha256, requested_at)
      values (${id}, ${cascadeOrg.orgId}, ${createHash("sha256").update(id).digest("hex")}, now())`.execute(
      owner,
    );
    await sql`update organizations set deleted_at = now() where id = ${cascadeOrg.orgId}`.execute(owner);
    let runs = 0;
    let objectsMs = 0;
    const cascade = await during(consumer, ingestOrg, async () => {
      const started = performance.now();
      // Objects go first: the last object page's end splits the objects' time from the rows'.
      const afterBatch = ({ step }: { step: string }) => {
        if (step.startsWith("objects:")) objectsMs = performance.now() - started;
      };
      for (;;) {
        runs += 1;
        const { more } = await runDeletions(maintenance, "org", new Date(Date.now() + 1_000), {
          media: s3.media,
          afterBatch,
        });
        const row = await owner
          .selectFrom("org_deletions")
          .select(["status"])
          .where("id", "=", id)
          .executeTakeFirstOrThrow();
        if (!more || row.status === "completed") break;
      }
      return performance.now() - started;
    });
    const receipt = await owner
      .selectFrom("org_deletions")
      .select(["counts", "status"])
      .where("id", "=", id)
      .executeTakeFirstOrThrow();
    if (receipt.status !== "completed")
      throw new Error(`org-delete bench: receipt ${JSON.stringify(receipt)}`);
    const counts = receipt.counts as Record<string, number>;
    const cascadeRows = Object.entries(counts)
      .filter(([k]) => !k.startsWith("objects:"))
      .reduce((s, [, n]) => s + Number(n), 0);
    const cascadeObjects = Number(counts["objects:media"] ?? 0);

    // Plain: one DELETE per table by org_id (children first, as the foreign keys need), one bulk delete
    // request per 1,000 keys.
    progress("(l) plain: DELETE … WHERE org_id per table, bulk DeleteObjects");
    const client = new S3Client({
      endpoint: s3.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
      requestChecksumCalculation: "WHEN_REQUIRED",
    });
    let plainObjectsMs = 0;
    let plainObjects = 0;
    const plain = await during(consumer, ingestOrg, async () => {
      const t0 = performance.now();
      for (;;) {
        const page = await s3.media.list(`media/${plainOrg.orgId}/`);
        if (page.keys.length === 0) break;
        await client.send(
          new DeleteObjectsCommand({
            Bucket: MEDIA_BUCKET,
            Delete: { Objects: page.keys.map((Key) => ({ Key })), Quiet: true },
          }),
        );
        plainObjects += page.keys.length;
      }
      plainObjectsMs = performance.now() - t0;
      const t1 = performance.now();
      let rows = 0;
      for (const table of [
        "sdk_events",
        "sdk_users",
        "event_daily_counts",
        "sdk_keys",
        "project_layers",
        "projects",
        "organizations",
      ]) {
        const column = table === "organizations" ? "id" : "org_id";
        const { numAffectedRows } =
          await sql`delete from ${sql.table(table)} where ${sql.ref(column)} = ${plainOrg.orgId}`.execute(
            maintenance,
          );
        rows += Number(numAffectedRows ?? 0);
      }
      return { rows, ms: performance.now() - t1 };
    });
    client.destroy();
    return {
      cascade: {
        rows: cascadeRows,
        objects: cascadeObjects,
        rowsMs: cascade.value - objectsMs,
        objectsMs,
        runs,
        ingest: cascade.ingest,
      },
      plain: {
        rows: plain.value.rows,
        objects: plainObjects,
        rowsMs: plain.value.ms,
        objectsMs: plainObjectsMs,
        ingest: plain.ingest,
      },
      idle,
    };
  } finally {
    await closeS3();
    await closeMaintenance();
    await closeConsumer();
    await closeOwner();
  }
}

export function orgDeleteLines(f: OrgDeleteFigures, o: OrgDeleteOptions): string {
  const int = (n: number) => Math.round(n).toLocaleString("en-US");
  const perS = (n: number, ms: number) => int(n / (ms / 1_000));
  return [
    `(l) org delete  ${int(o.events)} events + ${int(o.objects)} objects per org: cascade (Cron, ${f.cascade.runs} runs of ≤ ${int(CASCADE_ROWS_PER_RUN)} rows) ` +
      `${perS(f.cascade.rows, f.cascade.rowsMs)} rows/s (${int(f.cascade.rows)} rows in ${(f.cascade.rowsMs / 1_000).toFixed(1)} s), ` +
      `${perS(f.cascade.objects, f.cascade.objectsMs)} objects/s | plain DELETE … WHERE org_id ` +
      `${perS(f.plain.rows, f.plain.rowsMs)} rows/s (${(f.plain.rowsMs / 1_000).toFixed(1)} s), bulk DeleteObjects ` +
      `${perS(f.plain.objects, f.plain.objectsMs)} objects/s | rows ratio ${(f.cascade.rows / f.cascade.rowsMs / (f.plain.rows / f.plain.rowsMs)).toFixed(2)}`,
    `    ingest of another org (persistEvents, 150-event messages, 1 connection): idle ${int(f.idle.eventsPerSecond)} ev/s ` +
      `(slowest ${f.idle.maxMessageMs.toFixed(0)} ms) | during cascade ${int(f.cascade.ingest.eventsPerSecond)} ev/s ` +
      `(${f.cascade.ingest.maxMessageMs.toFixed(0)} ms) | during plain ${int(f.plain.ingest.eventsPerSecond)} ev/s ` +
      `(${f.plain.ingest.maxMessageMs.toFixed(0)} ms)`,
  ].join("\n");
}

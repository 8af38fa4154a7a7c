// npm run dead-letters -- <command>: what operators see of, and do with, the dead letters in object storage
// (functions/deadLetters). Reads S3_ENDPOINT, S3_REGION, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY and
// DEAD_LETTER_BUCKET from the environment; without S3_ENDPOINT it uses the local S3 server of `npm run dev`.
//
//   list [events|relay]      one line per dead letter: key, reason, events, redrives
//   show <key>               the letter as stored (ids and hashes only: nothing that is never stored)
//   redrive <key>            asks the next Cron run to send it back, whatever its reason or redrive count
//
// A redrive is only a request: the Cron Worker sends letters back through their queue while the database
// answers, so the normal path (erasure rule, event-id dedupe) stores each event once.

import {
  type DeadLetterKind,
  deadLetterKeys,
  putDeadLetter,
  readDeadLetter,
} from "../functions/deadLetters/store";
import { objectStoreFor } from "../functions/storage/config";

const LOCAL = {
  S3_ENDPOINT: `http://127.0.0.1:${process.env.S3_PORT ?? 4569}`,
  S3_ACCESS_KEY_ID: "S3RVER",
  S3_SECRET_ACCESS_KEY: "S3RVER",
  S3_REGION: "us-east-1",
};
const env = process.env.S3_ENDPOINT
  ? {
      S3_ENDPOINT: process.env.S3_ENDPOINT,
      S3_ACCESS_KEY_ID: process.env.S3_ACCESS_KEY_ID,
      S3_SECRET_ACCESS_KEY: process.env.S3_SECRET_ACCESS_KEY,
      S3_REGION: process.env.S3_REGION ?? "auto",
    }
  : LOCAL;
// The AWS SDK's notice that its releases after January 2027 need Node 22 (it is pinned; package.json says
// Node 20) is for whoever upgrades, not for every operator command. Its documented switch; read when the
// client is built.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
const store = objectStoreFor(env, process.env.DEAD_LETTER_BUCKET ?? "layers-dead-letters");
if (!store) throw new Error("no object storage configured");

const [command, arg] = process.argv.slice(2);
if (command === "list") {
  const kinds: DeadLetterKind[] = arg === "events" || arg === "relay" ? [arg] : ["events", "relay"];
  let n = 0;
  for (const kind of kinds) {
    for await (const key of deadLetterKeys(store, kind)) {
      const letter = await readDeadLetter(store, key);
      if (!letter) continue;
      const events = (letter.body as { events?: unknown[] } | null)?.events?.length ?? "?";
      const flags = letter.redriveRequested ? " redrive-requested" : "";
      console.log(
        `${key}\t${letter.reason}${letter.code ? ` ${letter.code}` : ""}\tevents=${events}\tredrives=${letter.redrives}${flags}`,
      );
      n += 1;
    }
  }
  console.log(`${n} dead letter(s)`);
} else if (command === "show" && arg) {
  const letter = await readDeadLetter(store, arg);
  if (!letter) {
    console.error(`no dead letter ${arg}`);
    process.exit(1);
  }
  console.log(JSON.stringify(letter, null, 2));
} else if (command === "redrive" && arg) {
  const letter = await readDeadLetter(store, arg);
  if (!letter) {
    console.error(`no dead letter ${arg}`);
    process.exit(1);
  }
  await putDeadLetter(store, { ...letter, redriveRequested: true });
  console.log(`${arg}: the next Cron run sends it back`);
} else {
  console.error("usage: npm run dead-letters -- list [events|relay] | show <key> | redrive <key>");
  process.exit(2);
}

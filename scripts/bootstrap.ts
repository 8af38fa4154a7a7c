// npm run bootstrap -- "Acme Inc": creates an org and its first owner API key on a fresh install and
// prints the secret once. Connects with DATABASE_URL (owner or app role), or the embedded .data/pg.
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { bootstrapOrg } from "../functions/org/bootstrapOrg";
import { startEmbeddedPostgres } from "./local/embedded-postgres";
import { migrate } from "./local/migrate";
import { createNodeDb } from "./local/node-db";

const orgName = process.argv[2] ?? "My org";
let url = process.env.DATABASE_URL;
const embedded = url
  ? undefined
  : await (async () => {
      const dataDir = path.resolve(import.meta.dirname, "..", ".data", "pg");
      await mkdir(dataDir, { recursive: true });
      return startEmbeddedPostgres({ dataDir });
    })();
url ??= embedded!.url;
await migrate(url);
const db = createNodeDb(url, 1);
const { org, key } = await bootstrapOrg(db, { orgName });
await db.destroy();
await embedded?.stop();
console.log(`org    ${org.id} (${org.name})
key    ${key.id} (owner)
secret ${key.secret}

The secret is shown once; store it now. Use it as: Authorization: Bearer ${key.secret}`);

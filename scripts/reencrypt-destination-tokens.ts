// Key rotation, step 3 (README "Destination token keys"): moves every stored destination token, webhook
// signing secret and storage-config secret access key that an older key wrote to the current key, across all orgs, in one transaction. Safe to run again (rows already under
// the current key are not touched) and while the API serves requests (writes lock the same rows).
//
//   MAINTENANCE_DATABASE_URL=postgres://layers_maintenance:…@host/db \
//   DESTINATION_KEYS='{"k1":"…","k2":"…"}' DESTINATION_KEY_ID=k2 \
//   npx tsx scripts/reencrypt-destination-tokens.ts
//
// ORG_ID=org_… limits the run to one org (a staged rotation, or a test database shared with others).
// Connects as layers_maintenance (it bypasses RLS to see every org and may update only the two token
// columns of each table). Without MAINTENANCE_DATABASE_URL, DATABASE_URL's server is used with that role (local setups).
import { parseKeyring } from "../functions/destinations/crypto";
import { countStaleDestinationTokens, reencryptDestinations } from "../functions/destinations/store";
import { countStaleStorageSecrets, reencryptStorageSecrets } from "../functions/storageConfigs/store";
import { countStaleWebhookSecrets, reencryptWebhookSecrets } from "../functions/webhooks/store";
import { maintenanceRoleUrl } from "./local/migrate";
import { createNodeDb } from "./local/node-db";

const url =
  process.env.MAINTENANCE_DATABASE_URL ??
  (process.env.DATABASE_URL ? maintenanceRoleUrl(process.env.DATABASE_URL) : undefined);
if (!url) {
  console.error("Set MAINTENANCE_DATABASE_URL (or DATABASE_URL for a local server).");
  process.exit(2);
}
const keyring = parseKeyring(process.env);
const scope = { orgId: process.env.ORG_ID || undefined };
const db = createNodeDb(url, 1);
try {
  const moved = await db.transaction().execute((tx) => reencryptDestinations(tx, keyring, scope));
  // Webhook signing secrets live under the same keyring (functions/webhooks/secrets.ts).
  const movedSecrets = await db.transaction().execute((tx) => reencryptWebhookSecrets(tx, keyring, scope));
  // Partners' storage credentials are sealed under the same keyring too (functions/content/storageSecret.ts).
  const movedStorage = await db.transaction().execute((tx) => reencryptStorageSecrets(tx, keyring, scope));
  const left = await db
    .transaction()
    .execute((tx) => countStaleDestinationTokens(tx, keyring.currentKeyId, scope));
  const leftSecrets = await db
    .transaction()
    .execute((tx) => countStaleWebhookSecrets(tx, keyring.currentKeyId, scope));
  console.log(
    `re-encrypted ${moved} destination token(s) under key "${keyring.currentKeyId}"; ${left} left under older keys`,
  );
  const leftStorage = await db
    .transaction()
    .execute((tx) => countStaleStorageSecrets(tx, keyring.currentKeyId, scope));
  console.log(`re-encrypted ${movedStorage} storage config secret(s); ${leftStorage} left under older keys`);
  console.log(
    `re-encrypted ${movedSecrets} webhook endpoint(s)' signing secrets; ${leftSecrets} left under older keys`,
  );
  process.exitCode = left === 0 && leftSecrets === 0 && leftStorage === 0 ? 0 : 1;
} finally {
  await db.destroy();
}

import { parseKeyring } from "../../functions/destinations/crypto";
import { putDestination } from "../../functions/destinations/store";
import { type Db, withTenant } from "../../shared/db";
import type { FakePlatforms } from "./fakePlatforms";
import { rememberSecret } from "./issuedSecrets";
import { TEST_DESTINATION_KEYRING } from "./stack";
import type { TestTenant } from "./tenant";

/** Stores a project's Meta / TikTok / Apple destinations the way the API does, and tells the fakes the tokens. */
export async function addDestinations(
  db: Db,
  t: TestTenant,
  fakes: FakePlatforms,
  options: {
    meta?: { sendDeviceIds?: boolean; token?: string; enabled?: boolean };
    tiktok?: { token?: string; enabled?: boolean };
    apple?: boolean;
  },
): Promise<{ datasetId: string; pixelCode: string; metaToken: string; tiktokToken: string }> {
  const keyring = parseKeyring(TEST_DESTINATION_KEYRING);
  const datasetId = `ds${t.projectId.slice(-10)}`;
  const pixelCode = `PX${t.projectId.slice(-10)}`;
  const metaToken = `EAAmeta${t.projectId.slice(-12)}secret`;
  const tiktokToken = `tt${t.projectId.slice(-12)}secret`;
  rememberSecret(metaToken);
  rememberSecret(tiktokToken);
  fakes.meta.tokens.set(datasetId, metaToken);
  fakes.tiktok.tokens.set(pixelCode, tiktokToken);
  await withTenant(db, t.orgId, async (tx) => {
    if (options.meta) {
      await putDestination(
        tx,
        t.orgId,
        t.projectId,
        {
          kind: "meta",
          enabled: options.meta.enabled ?? true,
          datasetId,
          accessToken: options.meta.token ?? metaToken,
          testEventCode: null,
          sendDeviceIds: options.meta.sendDeviceIds ?? false,
        },
        keyring,
        new Date(),
      );
    }
    if (options.tiktok) {
      await putDestination(
        tx,
        t.orgId,
        t.projectId,
        {
          kind: "tiktok",
          enabled: options.tiktok.enabled ?? true,
          pixelCode,
          accessToken: options.tiktok.token ?? tiktokToken,
          testEventCode: null,
        },
        keyring,
        new Date(),
      );
    }
    if (options.apple) {
      await putDestination(
        tx,
        t.orgId,
        t.projectId,
        { kind: "apple-search-ads", enabled: true },
        keyring,
        new Date(),
      );
    }
  });
  return { datasetId, pixelCode, metaToken, tiktokToken };
}

import type { z } from "@hono/zod-openapi";
import type { ApiKeySchema, CreatedApiKeySchema } from "../../workers/api/routes/apiKeys";
import type { AuditEventSchema } from "../../workers/api/routes/auditLog";
import type { DeletionRequestSchema, SuppressionSchema } from "../../workers/api/routes/deletionRequests";
import type {
  DestinationListSchema,
  DestinationSchema,
  TestSendResultSchema,
} from "../../workers/api/routes/destinations";
import type { DeletedMemberSchema, MemberSchema } from "../../workers/api/routes/members";
import type { OrgSchema } from "../../workers/api/routes/org";
import type { ProjectSchema } from "../../workers/api/routes/projects";
import type { DeliverySchema, ReplaySchema } from "../../workers/api/routes/relayDeliveries";
import type { RequestLogListSchema, RequestLogSchema } from "../../workers/api/routes/requestLogs";
import type { CreatedSdkKeySchema, SdkKeySchema } from "../../workers/api/routes/sdkKeys";
import type { StorageCheckSchema, StorageConfigSchema } from "../../workers/api/routes/storageConfigs";
import type { UserDataSchema, UserMatchListSchema } from "../../workers/api/routes/userData";
import type { ErrorSchema, listOf } from "../../workers/api/schemas";

// The API's answers as tests type them: inferred from the routes' own schemas (test/support/api.ts parses
// every answer with the same schemas), never redeclared by hand.

/** A page of `S` as every list route answers it (schemas.ts listOf). */
export type ListOf<S extends z.ZodTypeAny> = z.infer<ReturnType<typeof listOf<S>>>;

export type ErrorBody = z.infer<typeof ErrorSchema>;
export type Project = z.infer<typeof ProjectSchema>;
export type ProjectList = ListOf<typeof ProjectSchema>;
export type ApiKey = z.infer<typeof ApiKeySchema>;
export type CreatedApiKey = z.infer<typeof CreatedApiKeySchema>;
export type ApiKeyList = ListOf<typeof ApiKeySchema>;
export type SdkKey = z.infer<typeof SdkKeySchema>;
export type CreatedSdkKey = z.infer<typeof CreatedSdkKeySchema>;
export type SdkKeyList = ListOf<typeof SdkKeySchema>;
export type Org = z.infer<typeof OrgSchema>;
export type Member = z.infer<typeof MemberSchema>;
export type DeletedMember = z.infer<typeof DeletedMemberSchema>;
export type MemberList = ListOf<typeof MemberSchema>;
export type AuditEvent = z.infer<typeof AuditEventSchema>;
export type AuditList = ListOf<typeof AuditEventSchema>;
export type RequestLog = z.infer<typeof RequestLogSchema>;
export type RequestLogList = z.infer<typeof RequestLogListSchema>;
export type Destination = z.infer<typeof DestinationSchema>;
export type DestinationList = z.infer<typeof DestinationListSchema>;
export type TestSendResult = z.infer<typeof TestSendResultSchema>;
export type RelayDelivery = z.infer<typeof DeliverySchema>;
export type RelayDeliveryList = ListOf<typeof DeliverySchema>;
export type RelayReplay = z.infer<typeof ReplaySchema>;
export type DeletionRequest = z.infer<typeof DeletionRequestSchema>;
export type DeletionRequestList = ListOf<typeof DeletionRequestSchema>;
export type Suppression = z.infer<typeof SuppressionSchema>;
export type SuppressionList = ListOf<typeof SuppressionSchema>;
export type UserData = z.infer<typeof UserDataSchema>;
export type UserMatchList = z.infer<typeof UserMatchListSchema>;
export type StorageConfig = z.infer<typeof StorageConfigSchema>;
export type StorageConfigList = ListOf<typeof StorageConfigSchema>;
export type StorageCheck = z.infer<typeof StorageCheckSchema>;

// The Worker's `env` is CronBindings, generated from its wrangler.toml by `npm run types`: EVENTS_QUEUE
// ("layers-events": dead events are redriven through the normal persist path) and RELAY_DLQ
// ("layers-relay-dlq": relay dead letters kept in storage go back to be recorded). The vars and secrets
// it reads are the jobs' schema, validated once per isolate (parseEnv).
export { type CronVars, cronVarsSchema } from "../../functions/cron/vars";

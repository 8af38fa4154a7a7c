import { z } from "zod";

export interface CronBindings {
  DATABASE_URL: string;
  NEON_WS_PROXY?: string;
}

export const cronVarsSchema = z.object({
  DATABASE_URL: z.string().min(1),
  NEON_WS_PROXY: z.string().min(1).optional(),
});
export type CronVars = z.infer<typeof cronVarsSchema>;

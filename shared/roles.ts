import type { Role } from "./db/columnTypes";

export type { Role } from "./db/columnTypes";
export const ROLES = ["owner", "admin", "developer", "read_only"] as const satisfies readonly Role[];

// Each role can do everything the roles below it can.
//   read_only: read everything · developer: + projects and SDK keys
//   admin: + API keys and members (not owners) · owner: + the org itself and owners
const RANK: Record<Role, number> = { read_only: 0, developer: 1, admin: 2, owner: 3 };

export function hasRole(actual: Role, required: Role): boolean {
  return RANK[actual] >= RANK[required];
}

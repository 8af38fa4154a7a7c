/** The random part of a prefixed id (`cjob_AbC…` → `AbC…`): a job's container and staging key reuse it. */
export function randomSuffix(id: string): string {
  const at = id.indexOf("_");
  return at === -1 ? id : id.slice(at + 1);
}

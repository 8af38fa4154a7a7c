/**
 * A content job's failure: a stable code (stored as content_jobs.error_code and sent in content_job.failed)
 * and whether another attempt of the same step may succeed. Messages name codes and ids, never request
 * text or a credential.
 */
export class JobError extends Error {
  override readonly name = "JobError";
  constructor(
    readonly code: string,
    message: string,
    readonly retryable = true,
  ) {
    super(message);
  }
}

/** How a failure crosses the Workflow engine (which keeps only a message): the code in brackets. */
export function tagged(error: JobError): string {
  return `[code=${error.code}] ${error.message}`;
}

/** The code of a failure that came back through the engine; internal_error when it carries none. */
export function codeOf(error: unknown): string {
  if (error instanceof JobError) return error.code;
  const message = error instanceof Error ? error.message : String(error);
  return /\[code=([a-z_]{1,64})\]/.exec(message)?.[1] ?? "internal_error";
}

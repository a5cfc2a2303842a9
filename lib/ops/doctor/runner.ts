import { ExitCode, toOpsError } from '../errors';
import { formatDuration } from '../wait';
import { problem, type CheckContext, type CheckOutcome, type CheckResult, type DoctorCheck } from './types';

/** Error names AWS uses for a call the credentials may not make (IAM, STS, JSON APIs, EC2). */
const ACCESS_DENIED = new Set(['AccessDenied', 'AccessDeniedException', 'UnauthorizedOperation', 'UnauthorizedAccess', 'AuthorizationError']);

export const CREDENTIALS_CHECK = 'credentials';

export const CREDENTIALS_FIX = 'set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or run aws sso login), for the account to deploy to';

const NETWORK_FIX = 'check the network (and AWS_ENDPOINT_URL, if set), then run doctor again';

class CheckTimeout extends Error {}

/** A check that threw: the problem gets the check's severity (what is not known to be ready is reported, never passed). */
async function outcomeOfError(check: DoctorCheck, error: unknown, context: CheckContext): Promise<CheckOutcome> {
  if (error instanceof CheckTimeout) {
    return problem(check.severity, `no answer within ${formatDuration(check.timeoutMs)}`, NETWORK_FIX);
  }
  const opsError = toOpsError(error);
  if (error instanceof Error && ACCESS_DENIED.has(error.name)) {
    // identity() is bounded on its own (callerIdentity), so this wait ends.
    const caller = await context.identity().catch(() => undefined);
    return problem(
      check.severity,
      `could not check: ${opsError.message}`,
      `allow ${check.actions.join(', ')} for ${caller?.arn ?? 'these credentials'} (an IAM policy), or run doctor with credentials that may call them`,
    );
  }
  if (opsError.exitCode === ExitCode.noCredentials) {
    // Said once, in full, by the credentials check; the others only point there.
    if (check.name !== CREDENTIALS_CHECK) return problem(check.severity, `not checked: no usable AWS credentials (see ${CREDENTIALS_CHECK})`, CREDENTIALS_FIX);
    return problem(check.severity, `could not check: ${opsError.message}`, CREDENTIALS_FIX);
  }
  if (opsError.message.startsWith('Cannot reach')) return problem(check.severity, `could not check: ${opsError.message}`, NETWORK_FIX);
  return problem(check.severity, `could not check: ${opsError.message}`);
}

/** Runs one check within its time bound; never throws. */
async function runOne(check: DoctorCheck, makeContext: (signal: AbortSignal) => CheckContext): Promise<CheckResult> {
  const controller = new AbortController();
  const context = makeContext(controller.signal);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new CheckTimeout());
      controller.abort();
    }, check.timeoutMs);
  });
  try {
    const outcome = await Promise.race([check.run(context), timeout]);
    return { name: check.name, ...outcome };
  } catch (error) {
    return { name: check.name, ...(await outcomeOfError(check, error, context)) };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs every check at once, each on its own (one failing, denied or hanging never stops the
 * others), and hands the results to `onResult` in the checks' order as soon as each is known.
 */
export async function runChecks(
  checks: readonly DoctorCheck[],
  makeContext: (signal: AbortSignal) => CheckContext,
  onResult: (result: CheckResult) => void = () => undefined,
): Promise<CheckResult[]> {
  const running = checks.map((check) => runOne(check, makeContext));
  const results: CheckResult[] = [];
  for (const next of running) {
    const result = await next;
    results.push(result);
    onResult(result);
  }
  return results;
}

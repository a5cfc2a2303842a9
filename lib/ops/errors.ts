import { ConfigError } from '../config/load';

/** Exit codes of `npm run ops`; the README lists them, scripts may branch on them. */
export const ExitCode = {
  ok: 0,
  /** Unexpected failure or an AWS API error. */
  failure: 1,
  /** The cost report's month is (forecast to be) over the budget, so cron or CI can act on it. */
  overBudget: 2,
  /** Bad option, or an unknown or invalid `--env` (sysexits EX_USAGE: 2 is taken by over budget). */
  usage: 64,
  /** A stack, a stack output or the Spot Fleet request does not exist. */
  notDeployed: 3,
  /** A wait did not finish within its timeout. */
  timeout: 4,
  /** The operator did not confirm, or the command refused to act (prod teardown). */
  refused: 5,
  /** No AWS credentials, or AWS rejected them. */
  noCredentials: 6,
  /** The fleet stayed below its target for the whole wait. */
  noCapacity: 7,
  /** `cdk destroy` failed, or something meant to be deleted is still there. */
  teardownFailed: 8,
} as const;

/** An expected failure: its message is shown as is (no stack trace) and the process exits with `exitCode`. */
export class OpsError extends Error {
  override readonly name = 'OpsError';

  constructor(
    message: string,
    readonly exitCode: number = ExitCode.failure,
  ) {
    super(message);
  }
}

const CREDENTIAL_REJECTIONS = new Set([
  'AuthFailure',
  'InvalidClientTokenId',
  'UnrecognizedClientException',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'ExpiredTokenException',
  'RequestExpired',
]);

/** Maps anything thrown by a command to an OpsError with a message an operator can act on. */
export function toOpsError(error: unknown): OpsError {
  if (error instanceof OpsError) return error;
  if (error instanceof ConfigError) return new OpsError(error.message, ExitCode.usage);
  if (!(error instanceof Error)) return new OpsError(String(error));
  if (error.name === 'CredentialsProviderError') {
    return new OpsError(
      'No AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY ' +
        `(or run aws sso login) and try again. (${error.message})`,
      ExitCode.noCredentials,
    );
  }
  if (CREDENTIAL_REJECTIONS.has(error.name)) {
    return new OpsError(
      `AWS rejected the credentials (${error.name}: ${error.message}): check AWS_PROFILE or AWS_ACCESS_KEY_ID and that the session has not expired.`,
      ExitCode.noCredentials,
    );
  }
  const code = (error as { code?: string }).code;
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'ETIMEDOUT') {
    return new OpsError(`Cannot reach the AWS endpoint (${code}): ${error.message}`);
  }
  const isAws = typeof (error as { $metadata?: unknown }).$metadata === 'object';
  return new OpsError(isAws ? `AWS error ${error.name}: ${error.message}` : error.message);
}

/** True for an SDK error whose name starts with one of `prefixes` (e.g. `InvalidSpotFleetRequestId.NotFound`). */
export function isAwsError(error: unknown, ...prefixes: string[]): error is Error {
  return error instanceof Error && prefixes.some((p) => error.name.startsWith(p));
}

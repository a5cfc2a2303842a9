import type { EnvironmentConfig } from '../../config/load';
import type { AccountClients, AwsClients } from '../aws';

/** ok: ready; warn: a deploy works, but something should be done; fail: a deploy (or the GPU's first launch) fails; skip: does not apply. */
export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  readonly name: string;
  readonly status: CheckStatus;
  /** What was found, in one line. */
  readonly found: string;
  /** For warn and fail: the commands (or console steps) that fix it, one per line. */
  readonly fix?: readonly string[];
}

/** Who the credentials are (STS GetCallerIdentity), asked once per run and shared by the checks. */
export interface CallerIdentity {
  readonly account: string;
  readonly arn: string;
}

export interface CheckContext {
  readonly config: EnvironmentConfig;
  /** ec2, cloudFormation and secretsManager in the environment's region (OpsDeps.clients). */
  readonly aws: AwsClients;
  readonly account: AccountClients;
  /** The caller (asked once per run); rejects with STS's error, which the credentials check reports. */
  identity(): Promise<CallerIdentity>;
  /** Aborted when the check runs out of time: pass it to every SDK call ({ abortSignal }). */
  readonly signal: AbortSignal;
}

/** What a check reports; the runner adds the name and turns a throw or a timeout into a result. */
export type CheckOutcome = Omit<CheckResult, 'name'>;

export interface DoctorCheck {
  readonly name: string;
  /** The status a problem found by this check gets; also the status when the check itself cannot run. */
  readonly severity: 'warn' | 'fail';
  /** The IAM actions the check calls, named in the fix when AWS denies one. */
  readonly actions: readonly string[];
  /** Longest the check may take (its own network timeouts fit inside). */
  readonly timeoutMs: number;
  run(context: CheckContext): Promise<CheckOutcome>;
}

export const ok = (found: string): CheckOutcome => ({ status: 'ok', found });
export const skip = (found: string): CheckOutcome => ({ status: 'skip', found });
export const problem = (status: 'warn' | 'fail', found: string, ...fix: string[]): CheckOutcome => ({ status, found, fix });

/** Time bound of a check that makes a few AWS calls. */
export const AWS_CHECK_TIMEOUT_MS = 20_000;

import { GetCallerIdentityCommand, type STSClient } from '@aws-sdk/client-sts';
import { CREDENTIALS_CHECK } from './runner';
import { AWS_CHECK_TIMEOUT_MS, ok, problem, type CallerIdentity, type DoctorCheck } from './types';

/** STS GetCallerIdentity (needs no permission), bounded so that checks waiting on it end. */
export async function callerIdentity(sts: STSClient): Promise<CallerIdentity> {
  const out = await sts.send(new GetCallerIdentityCommand({}), { abortSignal: AbortSignal.timeout(AWS_CHECK_TIMEOUT_MS) });
  if (!out.Account || !out.Arn) throw new Error('STS GetCallerIdentity answered without an account or ARN');
  return { account: out.Account, arn: out.Arn };
}

/** Whose credentials these are, against the config's account, and the region everything is checked in. */
export const credentialsCheck: DoctorCheck = {
  name: CREDENTIALS_CHECK,
  severity: 'fail',
  actions: ['sts:GetCallerIdentity'],
  timeoutMs: AWS_CHECK_TIMEOUT_MS,
  async run({ config, identity }) {
    const caller = await identity();
    const region = `region ${config.region} (from the config)`;
    if (config.account && config.account !== caller.account) {
      return problem(
        'fail',
        `the credentials are for account ${caller.account} (${caller.arn}), but ${config.envName} deploys to account ${config.account} (its account in lib/config/environments.ts)`,
        `use credentials of account ${config.account} (e.g. AWS_PROFILE=<a profile of ${config.account}>), or correct account of ${config.envName} in lib/config/environments.ts`,
      );
    }
    const which = config.account ? 'the account in the config' : 'account unset in the config, so the credentials decide';
    return ok(`account ${caller.account} as ${caller.arn} (${which}), ${region}`);
  },
};

import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { DefaultStackSynthesizer } from 'aws-cdk-lib';
import { isAwsError } from '../errors';
import { describeStack } from '../stack-outputs';
import { AWS_CHECK_TIMEOUT_MS, ok, problem, type CheckContext, type DoctorCheck } from './types';

/** The bootstrap stack `cdk bootstrap` deploys (the CLI's DEFAULT_TOOLKIT_STACK_NAME, lib/api/toolkit-info). */
export const TOOLKIT_STACK = 'CDKToolkit';

/** The app keeps DefaultStackSynthesizer's qualifier: the version parameter the deploys check. */
export const BOOTSTRAP_VERSION_PARAMETER = DefaultStackSynthesizer.DEFAULT_BOOTSTRAP_STACK_VERSION_SSM_PARAMETER.replace(
  '${Qualifier}',
  DefaultStackSynthesizer.DEFAULT_QUALIFIER,
);

/**
 * The bootstrap version the stacks require (aws-cdk-lib 2.276 DefaultStackSynthesizer,
 * MIN_BOOTSTRAP_STACK_VERSION: `requiresBootstrapStackVersion` of every stack and asset
 * manifest; a test compares it with the synthesized manifests).
 */
export const MIN_BOOTSTRAP_VERSION = 6;

/** A stack in one of these states has no usable resources: it must be deleted before bootstrapping again. */
const BROKEN = /^(ROLLBACK_COMPLETE|ROLLBACK_FAILED|CREATE_FAILED|DELETE_FAILED|DELETE_IN_PROGRESS)$/;

async function bootstrapVersion({ account, signal }: CheckContext): Promise<number | undefined> {
  try {
    const out = await account.ssm.send(new GetParameterCommand({ Name: BOOTSTRAP_VERSION_PARAMETER }), { abortSignal: signal });
    return Number(out.Parameter?.Value);
  } catch (error) {
    if (isAwsError(error, 'ParameterNotFound')) return undefined;
    throw error;
  }
}

/** `cdk deploy` needs the CDKToolkit stack's bucket and roles, and checks the version parameter. */
export const bootstrapCheck: DoctorCheck = {
  name: 'cdk-bootstrap',
  severity: 'fail',
  actions: ['cloudformation:DescribeStacks', 'ssm:GetParameter'],
  timeoutMs: AWS_CHECK_TIMEOUT_MS,
  async run(context) {
    const { config, aws, identity } = context;
    const [stack, version, caller] = await Promise.all([
      describeStack(aws.cloudFormation, TOOLKIT_STACK),
      bootstrapVersion(context),
      identity().catch(() => undefined),
    ]);
    const accountId = caller?.account ?? config.account ?? 'ACCOUNT';
    const bootstrap = `npx cdk bootstrap aws://${accountId}/${config.region}`;
    const where = `in ${config.region}`;
    if (!stack && version === undefined) return problem('fail', `not bootstrapped: no ${TOOLKIT_STACK} stack and no SSM parameter ${BOOTSTRAP_VERSION_PARAMETER} ${where}`, bootstrap);
    if (stack && BROKEN.test(stack.status)) {
      return problem(
        'fail',
        `the ${TOOLKIT_STACK} stack ${where} is ${stack.status}, so deploys cannot use it`,
        `aws cloudformation delete-stack --stack-name ${TOOLKIT_STACK} --region ${config.region}   # only if it holds nothing you need; then:`,
        bootstrap,
      );
    }
    if (version === undefined) return problem('fail', `the ${TOOLKIT_STACK} stack ${where} (${stack?.status}) has no SSM parameter ${BOOTSTRAP_VERSION_PARAMETER}: bootstrapped with another qualifier`, bootstrap);
    if (!Number.isInteger(version) || version < MIN_BOOTSTRAP_VERSION) {
      return problem('fail', `bootstrap version ${version} ${where} is too old: this app's stacks require ${MIN_BOOTSTRAP_VERSION} or later`, bootstrap);
    }
    const found = `bootstrap version ${version} ${where} (the stacks require ${MIN_BOOTSTRAP_VERSION} or later)`;
    if (!stack) return problem('warn', `${found}, but no stack named ${TOOLKIT_STACK}: bootstrapped with --toolkit-stack-name? cdk commands then need the same option`, bootstrap);
    if (/_IN_PROGRESS$/.test(stack.status)) return problem('warn', `${found}; the ${TOOLKIT_STACK} stack is ${stack.status}`, 'wait until it finishes, then run doctor again');
    return ok(`${TOOLKIT_STACK} ${stack.status}, ${found}`);
  },
};

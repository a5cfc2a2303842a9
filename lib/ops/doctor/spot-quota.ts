import { DescribeInstanceTypesCommand, type _InstanceType } from '@aws-sdk/client-ec2';
import { GetAWSDefaultServiceQuotaCommand, GetServiceQuotaCommand } from '@aws-sdk/client-service-quotas';
import { isAwsError } from '../errors';
import { AWS_CHECK_TIMEOUT_MS, ok, problem, type CheckContext, type CheckOutcome, type DoctorCheck } from './types';

/**
 * The EC2 Spot vCPU quotas of the GPU families the config allows (Service Quotas, service code
 * ec2; codes as `aws service-quotas list-service-quotas --service-code ec2` lists them). Spot
 * quotas count vCPUs of running and requested Spot instances per family and region.
 */
export const SPOT_QUOTAS = [
  { code: 'L-3819A6DF', name: 'All G and VT Spot Instance Requests', family: /^(g|vt)\d/ },
  { code: 'L-7212CCBC', name: 'All P Spot Instance Requests', family: /^p\d/ },
] as const;

type SpotQuota = (typeof SPOT_QUOTAS)[number];

/** vCPUs of each instance type, from the EC2 API of the environment's region. */
async function vcpusOf({ aws, signal }: CheckContext, types: readonly string[]): Promise<Map<string, number>> {
  const out = await aws.ec2.send(new DescribeInstanceTypesCommand({ InstanceTypes: types as _InstanceType[] }), { abortSignal: signal });
  return new Map((out.InstanceTypes ?? []).map((t) => [String(t.InstanceType), t.VCpuInfo?.DefaultVCpus ?? 0]));
}

/** The applied quota; quotas never changed in the account may have only their default (NoSuchResourceException). */
async function quotaValue({ account, signal }: CheckContext, code: string): Promise<number> {
  const input = { ServiceCode: 'ec2', QuotaCode: code };
  try {
    const out = await account.serviceQuotas.send(new GetServiceQuotaCommand(input), { abortSignal: signal });
    return out.Quota?.Value ?? 0;
  } catch (error) {
    if (!isAwsError(error, 'NoSuchResourceException')) throw error;
    const out = await account.serviceQuotas.send(new GetAWSDefaultServiceQuotaCommand(input), { abortSignal: signal });
    return out.Quota?.Value ?? 0;
  }
}

interface Need {
  readonly quota: SpotQuota;
  readonly largest: string;
  readonly vcpus: number;
  readonly needed: number;
}

/** Per quota: the fleet at gpu.maxInstances, every instance of the family's largest configured type. */
function needs(types: readonly string[], vcpus: ReadonlyMap<string, number>, maxInstances: number): Need[] {
  return SPOT_QUOTAS.flatMap((quota) => {
    const members = types.filter((t) => quota.family.test(t));
    if (members.length === 0) return [];
    const largest = members.reduce((a, b) => ((vcpus.get(b) ?? 0) > (vcpus.get(a) ?? 0) ? b : a));
    const each = vcpus.get(largest) ?? 0;
    return [{ quota, largest, vcpus: each, needed: each * maxInstances }];
  });
}

export const spotQuotaCheck: DoctorCheck = {
  name: 'spot-vcpu-quota',
  severity: 'fail',
  actions: ['ec2:DescribeInstanceTypes', 'servicequotas:GetServiceQuota', 'servicequotas:GetAWSDefaultServiceQuota'],
  timeoutMs: AWS_CHECK_TIMEOUT_MS,
  async run(context): Promise<CheckOutcome> {
    const { config } = context;
    const types = config.gpu.instanceTypes;
    let vcpus: Map<string, number>;
    try {
      vcpus = await vcpusOf(context, types);
    } catch (error) {
      if (!isAwsError(error, 'InvalidInstanceType')) throw error;
      return problem('fail', `${error.message} (in ${config.region})`, `choose gpu.instanceTypes of ${config.envName} that ${config.region} offers: aws ec2 describe-instance-type-offerings --region ${config.region} --filters Name=instance-type,Values=${types.join(',')}`);
    }
    const uncovered = types.filter((t) => !SPOT_QUOTAS.some((q) => q.family.test(t)));
    const list = needs(types, vcpus, config.gpu.maxInstances);
    const values = await Promise.all(list.map((n) => quotaValue(context, n.quota.code)));
    const lines = list.map((n, i) => ({
      short: values[i] < n.needed,
      text: `"${n.quota.name}" (${n.quota.code}) is ${values[i]} vCPUs in ${config.region}, the fleet needs ${n.needed} (${n.largest}: ${n.vcpus} vCPUs x gpu.maxInstances ${config.gpu.maxInstances})`,
      fix: `aws service-quotas request-service-quota-increase --service-code ec2 --quota-code ${n.quota.code} --desired-value ${n.needed} --region ${config.region}`,
    }));
    const found = [...lines.map((l) => l.text), ...uncovered.map((t) => `no known Spot quota for ${t}`)].join('; ');
    const short = lines.filter((l) => l.short);
    if (short.length > 0) {
      return problem('fail', `${found}. Approval can take a day; the Service Quotas console takes the same request`, ...short.map((l) => l.fix));
    }
    if (uncovered.length > 0) return problem('warn', found, `check the Spot quota of ${uncovered.join(', ')} in the Service Quotas console (EC2, ${config.region})`);
    return ok(found);
  },
};

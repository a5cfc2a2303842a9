import { startFakeCostExplorer, type FakeAnswer, type FakeCostExplorer } from '../cost/fake-cost-explorer';

/**
 * Loopback stand-ins for the two APIs doctor calls that moto 5.2.1 cannot answer: Service Quotas
 * for EC2 (moto serves only the vpc quotas: moto/servicequotas/models.py) and Cost Explorer's
 * cost allocation tags (moto/ce has no ListCostAllocationTags). Both are AWS JSON 1.1 APIs, which
 * test/cost/fake-cost-explorer.ts answers by operation (X-Amz-Target); the answers are reset per
 * test and may be changed in place.
 */
export interface AccountStandIns {
  readonly serviceQuotas: FakeCostExplorer;
  readonly costExplorer: FakeCostExplorer;
  readonly quotaAnswers: Record<string, FakeAnswer>;
  readonly tagAnswers: Record<string, FakeAnswer>;
  /** Back to a fresh account: no applied quota (default 0), CostCenter not listed, nothing requested. */
  reset(): void;
  close(): Promise<void>;
}

/**
 * A Quota object as GetServiceQuota and GetAWSDefaultServiceQuota return it (Service Quotas API
 * Reference, data type ServiceQuota): the value is in vCPUs for the EC2 Spot quotas.
 */
export function quotaAnswer(code: string, name: string, value: number): FakeAnswer {
  return {
    body: {
      Quota: {
        ServiceCode: 'ec2',
        ServiceName: 'Amazon Elastic Compute Cloud (Amazon EC2)',
        QuotaArn: `arn:aws:servicequotas:us-east-1:123456789012:ec2/${code}`,
        QuotaCode: code,
        QuotaName: name,
        Value: value,
        Unit: 'None',
        Adjustable: true,
        GlobalQuota: false,
      },
    },
  };
}

/** ListCostAllocationTags (Cost Explorer API Reference): the tag with its status, or no tag at all (not seen on any resource yet). */
export function tagsAnswer(status?: 'Active' | 'Inactive'): FakeAnswer {
  return { body: { CostAllocationTags: status ? [{ TagKey: 'CostCenter', Type: 'UserDefined', Status: status, LastUpdatedDate: '2025-03-01T00:00:00Z' }] : [] } };
}

/** GetServiceQuota's error for a quota that has only its default value (the API reference's NoSuchResourceException, HTTP 400). */
export const NO_APPLIED_QUOTA: FakeAnswer = { error: 'NoSuchResourceException', message: 'The request failed because the specified service quota does not exist.' };

export async function startAccountStandIns(defaultQuota: { code: string; name: string }): Promise<AccountStandIns> {
  const quotaAnswers: Record<string, FakeAnswer> = {};
  const tagAnswers: Record<string, FakeAnswer> = {};
  const [serviceQuotas, costExplorer] = await Promise.all([startFakeCostExplorer(quotaAnswers), startFakeCostExplorer(tagAnswers)]);
  const reset = () => {
    for (const answers of [quotaAnswers, tagAnswers]) for (const key of Object.keys(answers)) delete answers[key];
    serviceQuotas.requests.length = 0;
    costExplorer.requests.length = 0;
    Object.assign(quotaAnswers, {
      GetServiceQuota: NO_APPLIED_QUOTA,
      GetAWSDefaultServiceQuota: quotaAnswer(defaultQuota.code, defaultQuota.name, 0),
      // RequestServiceQuotaIncrease answers with the request it opened (API reference, RequestedServiceQuotaChange).
      RequestServiceQuotaIncrease: { body: { RequestedQuota: { Id: 'request-1', ServiceCode: 'ec2', QuotaCode: defaultQuota.code, Status: 'PENDING' } } },
    });
    Object.assign(tagAnswers, {
      ListCostAllocationTags: tagsAnswer(),
      // UpdateCostAllocationTagsStatus answers with the tags it could not update (API reference: Errors, empty on success).
      UpdateCostAllocationTagsStatus: { body: { Errors: [] } },
    });
  };
  reset();
  return {
    serviceQuotas,
    costExplorer,
    quotaAnswers,
    tagAnswers,
    reset,
    close: async () => void (await Promise.all([serviceQuotas.close(), costExplorer.close()])),
  };
}

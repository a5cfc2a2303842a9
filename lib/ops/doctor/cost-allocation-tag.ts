import { ListCostAllocationTagsCommand } from '@aws-sdk/client-cost-explorer';
import { COST_CENTER_TAG } from '../../cost/report';
import { AWS_CHECK_TIMEOUT_MS, ok, problem, type DoctorCheck } from './types';

/** The fix the README gives: activation by the Cost Explorer API (the Billing console's Cost allocation tags does the same). */
export const ACTIVATE_TAG = `aws ce update-cost-allocation-tags-status --cost-allocation-tags-status TagKey=${COST_CENTER_TAG},Status=Active`;

/**
 * The budget and `cost report --by-tag` filter on the CostCenter tag (lib/app.ts tags every
 * resource with it), which counts only once activated as a cost allocation tag. Billing lists a
 * tag key only after resources carry it, up to 24 hours after the first deploy.
 */
export const costAllocationTagCheck: DoctorCheck = {
  name: 'cost-allocation-tag',
  severity: 'warn',
  actions: ['ce:ListCostAllocationTags'],
  timeoutMs: AWS_CHECK_TIMEOUT_MS,
  async run({ config, account, signal }) {
    const out = await account.costExplorer.send(new ListCostAllocationTagsCommand({ TagKeys: [COST_CENTER_TAG], Type: 'UserDefined' }), { abortSignal: signal });
    const tag = (out.CostAllocationTags ?? []).find((t) => t.TagKey === COST_CENTER_TAG);
    const value = `(${config.envName} carries ${COST_CENTER_TAG} = ${config.costCenter})`;
    if (tag?.Status === 'Active') return ok(`${COST_CENTER_TAG} is an active cost allocation tag ${value}`);
    if (tag) return problem('warn', `${COST_CENTER_TAG} is ${tag.Status ?? 'not active'} as a cost allocation tag ${value}: the budget's filter and cost report --by-tag see no cost until it is active (from then on, not backwards)`, ACTIVATE_TAG);
    return problem(
      'warn',
      `${COST_CENTER_TAG} is not listed as a cost allocation tag yet ${value}: Billing lists it up to 24 hours after resources carry it (after the first deploy); then activate it`,
      ACTIVATE_TAG,
    );
  },
};

import type { TemplateDiff } from '@aws-cdk/cloudformation-diff';
import { maskAssetHashes } from './asset-hash';

type IamChanges = TemplateDiff['iamChanges'];
type Statement = IamChanges['statements']['additions'][number];

/** What a statement grants (effect, actions, resources, principal, condition), asset hashes masked. */
function grantKey(s: Statement): string {
  return maskAssetHashes(JSON.stringify(s.render()));
}

/** `from` without one statement per equal grant in `cancel`: a hash-only change is a removal plus an equal addition. */
function unmatched(from: readonly Statement[], cancel: readonly Statement[]): Statement[] {
  const pending = new Map<string, number>();
  for (const s of cancel) pending.set(grantKey(s), (pending.get(grantKey(s)) ?? 0) + 1);
  return from.filter((s) => {
    const left = pending.get(grantKey(s)) ?? 0;
    if (left > 0) pending.set(grantKey(s), left - 1);
    return left === 0;
  });
}

/**
 * The statements that grant more: added Allows and removed Denies (cloudformation-diff's
 * permissionsBroadened), less those whose only change is an asset hash.
 */
export function widenedStatements(iam: IamChanges): { added: Statement[]; removedNegative: Statement[] } {
  const { additions, removals } = iam.statements;
  const positive = (list: readonly Statement[]) => list.filter((s) => !s.isNegativeStatement);
  const negative = (list: readonly Statement[]) => list.filter((s) => s.isNegativeStatement);
  return {
    added: unmatched(positive(additions), positive(removals)),
    removedNegative: unmatched(negative(removals), negative(additions)),
  };
}

/** Grants added outside statements (managed policies, IAM Identity Center), which have no asset hashes. */
export function otherGrantsAdded(iam: IamChanges): boolean {
  return iam.managedPolicies.hasAdditions || iam.ssoPermissionSets.hasAdditions || iam.ssoAssignments.hasAdditions || iam.ssoInstanceACAConfigs.hasAdditions;
}

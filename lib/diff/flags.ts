import type { TemplateDiff } from '@aws-cdk/cloudformation-diff';
import type { StackDiff } from './compare';
import { otherGrantsAdded, widenedStatements } from './iam-widening';
import { retains, STATEFUL_TYPES, VPS_DEPLOYMENT_TYPE } from './stateful';
import type { Flag, ResourceChange } from './types';

const MAX_ROWS = 20;

const VERB: Partial<Record<ResourceChange['impact'], string>> = {
  replace: 'will be replaced',
  'may-replace': 'may be replaced',
  destroy: 'will be deleted',
  orphan: 'will be removed from the stack',
};

function cap(rows: string[][]): string[][] {
  const [header, ...body] = rows;
  const kept = body.slice(0, MAX_ROWS);
  if (body.length > MAX_ROWS) kept.push([`(+${body.length - MAX_ROWS} more)`, ...header!.slice(1).map(() => '')]);
  return [header!, ...kept];
}

/** Replacement or removal of a stateful resource (destructive), or a VPS redeploy (for review). */
function statefulFlags({ change, diff }: StackDiff): Flag[] {
  const out: Flag[] = [];
  for (const r of change.resources) {
    const type = r.type.split(' -> ')[0]!;
    const stateful = STATEFUL_TYPES[type];
    const where = { env: change.env, stack: change.stack, logicalId: r.logicalId, resourceType: r.type };
    const verb = VERB[r.impact];
    if (stateful && verb) {
      const old = diff.resources.get(r.logicalId)?.oldValue as { DeletionPolicy?: unknown; UpdateReplacePolicy?: unknown } | undefined;
      const policy = r.action === 'removed' ? old?.DeletionPolicy : old?.UpdateReplacePolicy;
      const nested = r.replacingPaths.some((p) => p.includes('.'));
      const because = r.replacingPaths.length > 0 ? ` (changed: ${r.replacingPaths.join(', ')}${nested ? '; a nested property, so `cdk diff` shows only an update' : ''})` : '';
      const loss = retains(policy)
        ? `the old ${stateful.what} is kept by its ${String(policy)} policy but no longer managed by the stack`
        : stateful.loss;
      out.push({ kind: 'stateful', destructive: true, ...where, message: `${stateful.what} ${verb}${because}: ${loss}.` });
    } else if (type === VPS_DEPLOYMENT_TYPE && r.impact === 'update') {
      out.push({
        kind: 'vps-redeploy',
        destructive: false,
        ...where,
        message: `VPS deployment updated (changed: ${r.paths.join(', ')}): deploying redeploys the VPS stack (compose pull, gated switch, rollback on failure).`,
      });
    }
  }
  return out;
}

/** IAM statements or managed policies that grant more (cloudformation-diff's permissionsBroadened, modulo asset hashes). */
function iamFlags({ change, diff }: StackDiff): Flag[] {
  // TemplateDiff.permissionsBroadened also counts security-group rules; those get their own flags.
  const iam = diff.iamChanges;
  const { added, removedNegative } = widenedStatements(iam);
  if (added.length === 0 && removedNegative.length === 0 && !otherGrantsAdded(iam)) return [];
  const rows: string[][] = [['effect', 'action', 'resource', 'principal', 'condition']];
  for (const s of added) {
    const r = s.render();
    rows.push([r.effect, r.action, r.resource, r.principal, r.condition]);
  }
  for (const s of removedNegative) {
    const r = s.render();
    rows.push([`${r.effect} (removed)`, r.action, r.resource, r.principal, r.condition]);
  }
  for (const m of iam.managedPolicies.additions) rows.push(['managed policy', m.managedPolicyArn, '', m.identityArn, '']);
  const count = rows.length - 1;
  return [
    {
      kind: 'iam',
      destructive: false,
      env: change.env,
      stack: change.stack,
      message: `IAM permissions widened: ${count} statement(s) or managed policies grant more access.`,
      rows: cap(rows),
    },
  ];
}

type Rule = TemplateDiff['securityGroupChanges']['ingress']['additions'][number];

function isWorld(rule: Rule): boolean {
  return rule.peer?.kind === 'cidr-ip' && (rule.peer.ip === '0.0.0.0/0' || rule.peer.ip === '::/0');
}

/** Security-group rules that were added (ingress from anywhere called out). */
function securityGroupFlags({ change, diff }: StackDiff): Flag[] {
  const sg = diff.securityGroupChanges;
  const out: Flag[] = [];
  const describe = (direction: 'ingress' | 'egress', rule: Rule): string => {
    const peer = rule.describePeer();
    const from = direction === 'ingress' ? `from ${peer} to ${rule.groupId}` : `from ${rule.groupId} to ${peer}`;
    return `${direction} ${rule.describeProtocol()} ${from}`;
  };
  for (const rule of sg.ingress.additions) {
    const world = isWorld(rule);
    out.push({
      kind: 'security-group',
      destructive: false,
      env: change.env,
      stack: change.stack,
      message: `Security group widened: ${describe('ingress', rule)}${world ? ' — OPEN TO THE INTERNET' : ''}.`,
    });
  }
  for (const rule of sg.egress.additions) {
    out.push({ kind: 'security-group', destructive: false, env: change.env, stack: change.stack, message: `Security group widened: ${describe('egress', rule)}.` });
  }
  return out;
}

/** Every flag of every changed stack: destructive ones first. */
export function flagsOf(stacks: StackDiff[]): Flag[] {
  const all = stacks.flatMap((s) => [...statefulFlags(s), ...iamFlags(s), ...securityGroupFlags(s)]);
  return [...all.filter((f) => f.destructive), ...all.filter((f) => !f.destructive)];
}

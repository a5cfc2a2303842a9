import { deepEqual, fullDiff, ResourceImpact, type ResourceDifference, type TemplateDiff } from '@aws-cdk/cloudformation-diff';
import { ENVIRONMENT_NAMES } from '../config/environments';
import type { CfnTemplate } from '../synth';
import { changedPaths } from './paths';
import { nestedReplacement } from './spec';
import { retains, VPS_DEPLOYMENT_TYPE, VPS_IDENTITY_PROPERTIES } from './stateful';
import { diffText } from './text';
import type { AssemblySet, Impact, ResourceChange, StackChange } from './types';

/** One stack's change plus what the flag rules read from it. */
export interface StackDiff {
  readonly change: StackChange;
  readonly diff: TemplateDiff;
}

const MAX_PATHS = 8;

/** Environments in the app's order (dev, staging, prod), then any others alphabetically. */
export function orderedEnvs(base: AssemblySet, head: AssemblySet): string[] {
  const all = new Set([...Object.keys(base), ...Object.keys(head)]);
  const known = (ENVIRONMENT_NAMES as string[]).filter((e) => all.has(e));
  return [...known, ...[...all].filter((e) => !known.includes(e)).sort()];
}

type Resource = CfnTemplate['Resources'][string];

function props(r: Resource | undefined): Record<string, unknown> {
  return (r?.Properties ?? {}) as Record<string, unknown>;
}

function paths(oldR: Resource, newR: Resource): string[] {
  const { Type: _o, ...oldRest } = oldR;
  const { Type: _n, ...newRest } = newR;
  return changedPaths(oldRest, newRest).map((p) => p.replace(/^Properties\./, ''));
}

function changedResource(id: string, r: ResourceDifference): ResourceChange {
  const oldR = r.oldValue as Resource;
  const newR = r.newValue as Resource;
  // A Ref to a replaced resource reads the same but changes: cloudformation-diff names the property.
  const textual = paths(oldR, newR);
  const all = textual.length > 0 ? textual : Object.keys(r.propertyUpdates).map((k) => `${k} (references a replaced resource)`);
  const shown = all.length > MAX_PATHS ? [...all.slice(0, MAX_PATHS), `(+${all.length - MAX_PATHS} more)`] : all;
  const base = { logicalId: id, action: 'changed' as const, paths: shown };
  if (r.resourceTypeChanged) {
    return { ...base, type: `${r.oldResourceType} -> ${r.newResourceType}`, impact: 'replace', replacingPaths: ['Type'] };
  }
  const type = r.newResourceType ?? 'unknown';
  const updates = Object.entries(r.propertyUpdates);
  const nested = nestedReplacement(type, props(oldR), props(newR));
  const identity =
    type === VPS_DEPLOYMENT_TYPE ? VPS_IDENTITY_PROPERTIES.filter((p) => !deepEqual(props(oldR)[p], props(newR)[p])) : [];
  const replacing = [...updates.filter(([, d]) => d.changeImpact === ResourceImpact.WILL_REPLACE).map(([k]) => k), ...nested.replace, ...identity];
  const maybe = [...updates.filter(([, d]) => d.changeImpact === ResourceImpact.MAY_REPLACE).map(([k]) => k), ...nested.mayReplace];
  let impact: Impact = 'update';
  if (replacing.length > 0) impact = 'replace';
  else if (maybe.length > 0) impact = 'may-replace';
  else if (updates.length === 0 && Object.keys(r.otherChanges).every((k) => k === 'Metadata')) impact = 'metadata';
  return { ...base, type, impact, replacingPaths: impact === 'replace' ? replacing : impact === 'may-replace' ? maybe : [] };
}

function resourceChanges(diff: TemplateDiff): ResourceChange[] {
  const out: ResourceChange[] = [];
  diff.resources.forEachDifference((id, r) => {
    if (r.isAddition) {
      out.push({ logicalId: id, type: r.newResourceType ?? 'unknown', action: 'added', impact: r.isImport ? 'import' : 'create', paths: [], replacingPaths: [] });
    } else if (r.isRemoval) {
      const impact: Impact = retains((r.oldValue as Resource).DeletionPolicy) ? 'orphan' : 'destroy';
      out.push({ logicalId: id, type: r.oldResourceType ?? 'unknown', action: 'removed', impact, paths: [], replacingPaths: [] });
    } else if (r.isDifferent) {
      out.push(changedResource(id, r));
    }
  });
  return out;
}

/** Template sections other than Resources that differ, as `Outputs.Name (added)`. */
function sectionChanges(diff: TemplateDiff): string[] {
  const sections = {
    Parameters: diff.parameters,
    Outputs: diff.outputs,
    Conditions: diff.conditions,
    Mappings: diff.mappings,
    Metadata: diff.metadata,
    Other: diff.unknown,
  };
  const out: string[] = [];
  for (const [name, collection] of Object.entries(sections)) {
    collection.forEachDifference((id, d) => out.push(`${name}.${id} (${d.isAddition ? 'added' : d.isRemoval ? 'removed' : 'changed'})`));
  }
  for (const [name, d] of Object.entries({ Description: diff.description, Transform: diff.transform, AWSTemplateFormatVersion: diff.awsTemplateFormatVersion })) {
    if (d?.isDifferent) out.push(`${name} (changed)`);
  }
  return out;
}

function compareStack(env: string, stack: string, oldT: CfnTemplate | undefined, newT: CfnTemplate | undefined): StackDiff | undefined {
  // fullDiff may normalize its inputs; the templates are also read by the cost estimate.
  const diff = fullDiff(structuredClone(oldT ?? {}), structuredClone(newT ?? {}));
  if (oldT && newT && diff.isEmpty) return undefined;
  const status = !oldT ? 'added' : !newT ? 'removed' : 'changed';
  return {
    diff,
    change: { env, stack, status, resources: resourceChanges(diff), sections: sectionChanges(diff), detail: diffText(oldT, newT) },
  };
}

/** Every stack of every environment that differs between base and head, in deploy-manifest order. */
export function compareAssemblies(base: AssemblySet, head: AssemblySet): StackDiff[] {
  const out: StackDiff[] = [];
  for (const env of orderedEnvs(base, head)) {
    const b = base[env] ?? {};
    const h = head[env] ?? {};
    const stacks = [...Object.keys(h), ...Object.keys(b).filter((s) => !(s in h))];
    for (const stack of stacks) {
      const d = compareStack(env, stack, b[stack], h[stack]);
      if (d) out.push(d);
    }
  }
  return out;
}

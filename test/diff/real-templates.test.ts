import * as path from 'node:path';
import { readAssemblies } from '../../lib/diff/assemblies';
import { buildReport, exitCode } from '../../lib/diff/report';
import type { AssemblySet } from '../../lib/diff/types';
import { ENVS, synthesized, synthesizedDevWith } from '../support/synth';

/** The app's real dev templates against a variant synthesized with one config change. */
function devAgainst(change: (raw: any) => void) {
  const variant = synthesizedDevWith(change);
  expect(variant.violations).toEqual([]);
  return buildReport({ dev: synthesized('dev').templates }, { dev: variant.templates });
}

describe('the real synthesized templates', () => {
  test('every environment read from the cloud assemblies diffs empty against itself', () => {
    const dir = path.dirname(synthesized('dev').outdir);
    const set: AssemblySet = readAssemblies(dir);
    expect(Object.keys(set).sort()).toEqual([...ENVS].sort());
    expect(Object.keys(set.prod!)).toHaveLength(4);
    const report = buildReport(set, structuredClone(set));
    expect(report.empty).toBe(true);
    expect(exitCode(report)).toBe(0);
  });

  test('a new idle timeout changes the launch template user data in place; the fleet is not replaced', () => {
    const report = devAgainst((c) => (c.gpu = { ...c.gpu, idleMinutes: 20 }));
    const gpu = report.stacks.find((s) => s.stack === 'AiAssets-dev-Gpu')!;
    const lt = gpu.resources.find((r) => r.type === 'AWS::EC2::LaunchTemplate')!;
    expect(lt).toMatchObject({ impact: 'update' });
    expect(lt.paths).toContain('LaunchTemplateData.UserData');
    expect(gpu.resources.filter((r) => r.type === 'AWS::EC2::SpotFleet')).toEqual([]);
    expect(report.flags.filter((f) => f.destructive)).toEqual([]);
    expect(exitCode(report)).toBe(0);
  });

  test('a second instance type replaces the Spot Fleet and is flagged', () => {
    const report = devAgainst((c) => (c.gpu = { ...c.gpu, instanceTypes: ['g4dn.xlarge', 'g5.xlarge'] }));
    const fleet = report.flags.filter((f) => f.destructive && f.resourceType === 'AWS::EC2::SpotFleet');
    expect(fleet).toHaveLength(1);
    expect(fleet[0]!.message).toContain('SpotFleetRequestConfigData.LaunchTemplateConfigs');
    expect(exitCode(report)).toBe(3);
  });
});

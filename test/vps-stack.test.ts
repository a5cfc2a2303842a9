import { renderBundle } from '../lib/vps/bundle';
import { PREFETCH_TIMEOUT_SECONDS } from '../lib/vps/deployer-prefetch';
import { GATE_LAMBDA_TIMEOUT_SECONDS, MAX_CONVERGE_TIMEOUT_SECONDS, worstCaseGateSeconds } from '../lib/vps/gate-budget';
import { bundleSettingsFor } from '../lib/vps/bundle-settings';
import { loadEnvironment } from '../lib/config/load';
import { partOf, synthesized, synthesizedDevWith, templateOf } from './support/synth';

const vps = templateOf('dev', 'Vps');
const resourceProps = () => {
  const found = Object.values(vps.findResources('Custom::VpsDeployment'));
  expect(found).toHaveLength(1);
  return found[0].Properties as Record<string, any>;
};

test('the deployment is a custom resource whose properties are the bundle hash, host, fingerprint and secret ARNs', () => {
  const p = resourceProps();
  expect(p).toMatchObject({
    AppName: 'AiAssets',
    EnvName: 'dev',
    Host: 'vps-dev.example.com',
    Port: '22',
    User: 'deploy',
    HostKeySha256: 'SHA256:REPLACEwithTheVpsHostKeyFingerprint00000000',
    BundleHash: renderBundle(bundleSettingsFor(loadEnvironment('dev'))).hash,
    BaseDir: '/opt',
    KeepReleases: '5',
    ConvergeTimeoutSeconds: '240',
    RemoveVolumesOnDelete: 'true',
    AppSecretsArn: { Ref: expect.stringMatching(/^VpsAppSecrets/) },
  });
  expect(JSON.stringify(p.SshKeySecretArn)).toContain(':secret:AiAssets/dev/vps-ssh-key');
  expect(p.SecretNames).toContain('POSTGRES_PASSWORD');
});

test('prod keeps the named volumes on delete', () => {
  const prod = templateOf('prod', 'Vps');
  prod.hasResourceProperties('Custom::VpsDeployment', { RemoveVolumesOnDelete: 'false' });
});

test('the Provider framework runs onEvent and isComplete, polling every 30 s for up to 40 minutes', () => {
  const functions = Object.values(vps.findResources('AWS::Lambda::Function')).map((f) => f.Properties);
  const handlers = functions.filter((f: any) => /^index\.(onEvent|isComplete)$/.test(f.Handler));
  expect(handlers.map((f: any) => f.Handler).sort()).toEqual(['index.isComplete', 'index.onEvent']);
  for (const h of handlers) expect(h).toMatchObject({ Runtime: 'nodejs24.x', Timeout: 900 });
  vps.resourceCountIs('AWS::StepFunctions::StateMachine', 1);
  const [machine] = Object.values(vps.findResources('AWS::StepFunctions::StateMachine'));
  const definition = JSON.stringify(machine.Properties.DefinitionString);
  expect(definition).toContain('\\"IntervalSeconds\\":30');
  expect(definition).toContain('\\"MaxAttempts\\":80');
  // The image pull is killed before the waiter gives up, and the waiter gives up before CloudFormation does.
  expect(PREFETCH_TIMEOUT_SECONDS + GATE_LAMBDA_TIMEOUT_SECONDS).toBeLessThanOrEqual(80 * 30);
  expect(80 * 30 + GATE_LAMBDA_TIMEOUT_SECONDS).toBeLessThan(3600);
});

test('the gate and a rollback of the previous release fit one isComplete run, even at the largest converge timeout', () => {
  const [isComplete] = Object.values(vps.findResources('AWS::Lambda::Function')).filter((f) => f.Properties.Handler === 'index.isComplete');
  const lambdaSeconds = isComplete.Properties.Timeout as number;
  expect(lambdaSeconds).toBe(GATE_LAMBDA_TIMEOUT_SECONDS);
  expect(worstCaseGateSeconds(MAX_CONVERGE_TIMEOUT_SECONDS)).toBeLessThanOrEqual(lambdaSeconds);
  expect(worstCaseGateSeconds(MAX_CONVERGE_TIMEOUT_SECONDS + 1)).toBeGreaterThan(lambdaSeconds);
  expect(MAX_CONVERGE_TIMEOUT_SECONDS).toBe(240);
});

test('the stack generates the app secret seed; handlers may read only their two secrets and the bundle object', () => {
  vps.hasResourceProperties('AWS::SecretsManager::Secret', {
    GenerateSecretString: { GenerateStringKey: 'seed', PasswordLength: 64, SecretStringTemplate: '{}', ExcludePunctuation: true },
  });
  const statements = Object.entries(vps.findResources('AWS::IAM::Policy'))
    .filter(([id]) => /^Vps(OnEvent|IsComplete)Role/.test(id))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
  const actions = [...new Set(statements.flatMap((s: any) => [s.Action].flat()))].sort();
  expect(actions).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents', 's3:GetObject', 'secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);
  const sshKeyGrant = statements.find((s: any) => JSON.stringify(s.Resource).includes('vps-ssh-key'));
  expect(JSON.stringify(sshKeyGrant.Resource)).toContain('vps-ssh-key-??????');
});

test('no secret value in any template: only ARNs, names, a generator and the access key by reference', () => {
  for (const envName of ['dev', 'staging', 'prod']) {
    const templates = structuredClone(synthesized(envName).templates);
    // The one SecretString: the gateway's access key, built from the AccessKey's Ref and GetAtt
    // (test/gpu-control/template.test.ts checks its exact shape), never a literal.
    for (const template of Object.values(templates) as any[]) {
      for (const resource of Object.values(template.Resources ?? {}) as any[]) {
        if (resource.Type !== 'AWS::SecretsManager::Secret' || resource.Properties?.SecretString === undefined) continue;
        expect(JSON.stringify(resource.Properties.SecretString)).toMatch(/"Fn::GetAtt":\["\w+","SecretAccessKey"\]/);
        delete resource.Properties.SecretString;
      }
    }
    expect(JSON.stringify(templates)).not.toMatch(/PRIVATE KEY|"SecretString"|"SecretStringValue"|POSTGRES_PASSWORD=|change-me/);
  }
});

test('without a pinned host key the Vps stack is not synthesized, and synth says how to get the fingerprint', () => {
  const result = synthesizedDevWith((c) => delete c.vps.hostKeySha256);
  expect(Object.keys(result.templates)).toEqual(['AiAssets-dev-Storage', 'AiAssets-dev-Gpu', 'AiAssets-dev-Observability']);
  expect(result.violations).toEqual([]);
  expect(result.annotations).toEqual([
    expect.objectContaining({ path: 'AiAssets-dev-Storage', description: expect.stringContaining('ssh-keyscan -p 22 vps-dev.example.com | ssh-keygen -lf -') }),
  ]);
});

test('a changed compose bundle changes only the hash and the bundle object, so cdk diff shows a VPS change', () => {
  const changed = partOf(synthesizedDevWith((c) => (c.vps.hostnames.sim = 'studio.dev.example.com')), 'Vps');
  const before = resourceProps();
  const after = Object.values(changed.findResources('Custom::VpsDeployment'))[0].Properties;
  expect(after.BundleHash).not.toBe(before.BundleHash);
  expect(after.BundleKey).not.toBe(before.BundleKey);
  const { BundleHash, BundleKey, ...rest } = after;
  const { BundleHash: b1, BundleKey: b2, ...restBefore } = before;
  expect(rest).toEqual(restBefore);
  changed.hasOutput('VpsRelease', { Value: BundleHash });
});

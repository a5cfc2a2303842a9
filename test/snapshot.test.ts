import { ENVS, synthesized } from './support/synth';

// The serializer in test/support strips asset hashes and CDK-release noise, so these
// snapshots change only when our infrastructure does. `npm test` runs jest --ci, so a missing
// snapshot fails instead of being written: add or update them with `npx jest -u`.
describe.each(ENVS)('%s', (envName) => {
  test('templates match the snapshot', () => {
    const templates = Object.entries(synthesized(envName).templates);
    expect(templates.length).toBeGreaterThanOrEqual(3);
    for (const [name, template] of templates) {
      expect(template).toMatchSnapshot(name);
    }
  });
});

test('the serializer removes what churns across machines and CDK releases', () => {
  const { normalizeTemplate } = require('./support/template-serializer');
  const raw = {
    Parameters: { BootstrapVersion: { Type: 'AWS::SSM::Parameter::Value<String>' } },
    Rules: { CheckBootstrapVersion: {} },
    Mappings: { LatestNodeRuntimeMap: { 'us-east-1': { value: 'nodejs22.x' } } },
    Resources: {
      CDKMetadata: { Type: 'AWS::CDK::Metadata' },
      Fn: { Type: 'AWS::Lambda::Function', Properties: { Code: { S3Key: `${'a1'.repeat(32)}.zip` }, Runtime: 'nodejs22.x', Role: { 'Fn::GetAtt': ['CustomProviderRole', 'Arn'] } } },
    },
  };
  expect(JSON.stringify(normalizeTemplate(raw))).toBe(
    JSON.stringify({ Resources: { Fn: { Type: 'AWS::Lambda::Function', Properties: { Code: { S3Key: '[HASH].zip' }, Runtime: '[CDK PROVIDER RUNTIME]', Role: { 'Fn::GetAtt': ['CustomProviderRole', 'Arn'] } } } } }),
  );
});

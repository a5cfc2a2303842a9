import { fullDiff, ResourceImpact } from '@aws-cdk/cloudformation-diff';
import { loadEnvironment } from '../../lib/config/load';
import { FREE_TIER, regionPrices } from '../../lib/cost/prices';
import { inventory } from '../../lib/cost/template-inventory';
import { renderMarkdown, signedUsd } from '../../lib/diff/markdown';
import { changedPaths } from '../../lib/diff/paths';
import { buildReport, EXIT_DESTRUCTIVE, exitCode } from '../../lib/diff/report';
import { diffText } from '../../lib/diff/text';
import type { AssemblySet, DiffReport } from '../../lib/diff/types';
import { fixturePair, fixtureTemplates } from './support';

const GPU = 'AiAssets-dev-Gpu';
const STORAGE = 'AiAssets-dev-Storage';
const VPS = 'AiAssets-dev-Vps';
const FLEET = 'SpotFleetCDA6933C';
const BUCKET = 'AssetsBucket252B3DF7';
const DEPLOYMENT = 'VpsDeployment7587D007';

function resource(report: DiffReport, stack: string, id: string) {
  return report.stacks.find((s) => s.stack === stack)?.resources.find((r) => r.logicalId === id);
}

/** The baseline pair with one edit applied to the head's dev templates. */
function edited(edit: (head: AssemblySet['dev']) => void, editBase?: (base: AssemblySet['dev']) => void): DiffReport {
  const pair = fixturePair();
  edit(pair.head.dev!);
  editBase?.(pair.base.dev!);
  return buildReport(pair.base, pair.head);
}

const props = (t: AssemblySet['dev'], stack: string, id: string): any => t![stack]!.Resources[id]!.Properties;

describe('a renamed bucket', () => {
  const { base, head } = fixturePair('bucket-renamed');
  const report = buildReport(base, head);

  test('is a replacement of the bucket (and of its policy, which references it)', () => {
    expect(resource(report, STORAGE, BUCKET)).toMatchObject({ action: 'changed', impact: 'replace', paths: ['BucketName'], replacingPaths: ['BucketName'] });
    expect(resource(report, STORAGE, 'AssetsBucketPolicy75E1DDEC')?.impact).toBe('replace');
    expect(report.stacks.map((s) => s.stack)).toEqual([STORAGE]);
  });

  test('is flagged as destructive and fails the gate unless allowed', () => {
    const destructive = report.flags.filter((f) => f.destructive);
    expect(destructive).toHaveLength(1);
    expect(destructive[0]).toMatchObject({ kind: 'stateful', env: 'dev', stack: STORAGE, logicalId: BUCKET });
    expect(destructive[0]!.message).toMatch(/^S3 bucket will be replaced \(changed: BucketName\): the old bucket is deleted with its objects/);
    expect(exitCode(report)).toBe(EXIT_DESTRUCTIVE);
    expect(exitCode(buildReport(base, head, { allowDestructive: true }))).toBe(0);
  });

  test('the Markdown puts the flag above the changes and names the label', () => {
    const md = renderMarkdown(report);
    expect(md.indexOf('### Flagged')).toBeGreaterThan(-1);
    expect(md.indexOf('⛔ **destructive** `dev` / `AiAssets-dev-Storage` / `AssetsBucket252B3DF7`')).toBeLessThan(md.indexOf('### Changes'));
    expect(md).toContain('the check fails unless the pull request has the label `allow-destructive`');
    expect(md).toMatch(/\| ~ \| `AssetsBucket252B3DF7` \| AWS::S3::Bucket \| \*\*replace\*\* \| `BucketName` \|/);
  });
});

describe('a user-data change in the launch template', () => {
  const report = buildReport(fixturePair().base, fixturePair('user-data-changed').head);

  test('updates the launch template in place and leaves the fleet alone', () => {
    expect(report.stacks).toHaveLength(1);
    expect(report.stacks[0]!.resources).toEqual([
      { logicalId: 'LaunchTemplate67909292', type: 'AWS::EC2::LaunchTemplate', action: 'changed', impact: 'update', paths: ['LaunchTemplateData.UserData'], replacingPaths: [] },
    ]);
    expect(resource(report, GPU, FLEET)).toBeUndefined();
  });

  test('is not destructive', () => {
    expect(report.flags).toEqual([]);
    expect(exitCode(report)).toBe(0);
    expect(renderMarkdown(report)).toContain('Nothing flagged.');
  });
});

describe('a security group opened to 0.0.0.0/0', () => {
  const report = buildReport(fixturePair().base, fixturePair('security-group-opened').head);

  test('is flagged as open to the internet, without an IAM flag', () => {
    expect(report.flags).toHaveLength(1);
    expect(report.flags[0]).toMatchObject({ kind: 'security-group', destructive: false, stack: GPU });
    expect(report.flags[0]!.message).toBe(
      'Security group widened: ingress TCP 8188 from Everyone (IPv4) to ${NetworkGpuSecurityGroupFD5B82CA.GroupId} — OPEN TO THE INTERNET.',
    );
    expect(exitCode(report)).toBe(0);
  });

  test('a narrower extra rule is flagged without the internet warning', () => {
    const narrow = edited((h) => props(h, GPU, 'NetworkGpuSecurityGroupFD5B82CA').SecurityGroupIngress.push({ CidrIp: '198.51.100.7/32', IpProtocol: 'tcp', FromPort: 22, ToPort: 22 }));
    expect(narrow.flags.map((f) => f.message)).toEqual([expect.stringMatching(/^Security group widened: ingress TCP 22 from 198\.51\.100\.7\/32 to .*\.$/)]);
    expect(narrow.flags[0]!.message).not.toContain('INTERNET');
  });
});

describe('added alarms', () => {
  const { base, head } = fixturePair('alarms-added');
  const report = buildReport(base, head);

  test('are four created resources', () => {
    const stack = report.stacks.find((s) => s.stack === 'AiAssets-dev-Observability')!;
    expect(stack.resources.map((r) => [r.action, r.impact, r.type])).toEqual(Array(4).fill(['added', 'create', 'AWS::CloudWatch::Alarm']));
  });

  test('raise the monthly estimate by the alarm price of the extra billable alarm metrics', () => {
    const price = regionPrices(loadEnvironment('dev').region).cloudWatch.alarmMetricMonth.usd;
    const free = FREE_TIER.alarmMetrics.quantity;
    const billable = (set: AssemblySet) => Math.max(0, inventory(set.dev!).alarms.standardMetrics - free);
    const expected = price * (billable(head) - billable(base));
    expect(expected).toBeGreaterThan(0); // the fixture crosses the free tier, so the test can see a change
    const dev = report.costs.find((c) => c.env === 'dev')!;
    expect(dev.error).toBeUndefined();
    expect(dev.deltaUsd).toBeCloseTo(expected, 9);
    expect(dev.lines).toEqual([{ item: 'CloudWatch alarms', baseUsd: expect.any(Number), headUsd: expect.any(Number) }]);
    const row = renderMarkdown(report).split('\n').find((l) => l.startsWith('| dev |'));
    expect(row).toMatch(/^\| dev \| \$\d+\.\d\d \| \$\d+\.\d\d \| \*\*\+\$\d+\.\d\d\*\* \|$/);
    expect(row).toContain(`**${signedUsd(expected)}**`);
  });
});

describe('no change', () => {
  test('is an empty report', () => {
    const { base, head } = fixturePair();
    const report = buildReport(base, head);
    expect(report).toEqual({ empty: true, allowDestructive: false, flags: [], costs: [], stacks: [] });
    expect(renderMarkdown(report)).toBe('## Infrastructure diff\n\nNo infrastructure changes.\n');
    expect(exitCode(report)).toBe(0);
  });
});

describe('stacks and environments on one side only', () => {
  test('a stack only in the head is added; one only in the base is removed, with its stateful resources flagged', () => {
    const report = edited((h) => {
      h!['AiAssets-dev-Extra'] = { Resources: { Topic: { Type: 'AWS::SNS::Topic' } } };
      delete h![VPS];
    });
    expect(report.stacks.map((s) => [s.stack, s.status])).toEqual([
      ['AiAssets-dev-Extra', 'added'],
      [VPS, 'removed'],
    ]);
    expect(report.stacks[0]!.resources).toEqual([{ logicalId: 'Topic', type: 'AWS::SNS::Topic', action: 'added', impact: 'create', paths: [], replacingPaths: [] }]);
    const destructive = report.flags.filter((f) => f.destructive).map((f) => [f.logicalId, f.message.split(':')[0]]);
    expect(destructive).toEqual([
      ['VpsAppSecrets03D02908', 'Secrets Manager secret will be deleted'],
      [DEPLOYMENT, 'VPS deployment will be deleted'],
    ]);
  });

  test('an environment only in the head is all additions and costs nothing on the base side', () => {
    const { base, head } = fixturePair();
    head.staging = fixtureTemplates('baseline');
    const report = buildReport(base, head);
    expect(new Set(report.stacks.map((s) => `${s.env}:${s.status}`))).toEqual(new Set(['staging:added']));
    expect(report.flags.filter((f) => f.destructive)).toEqual([]);
    const staging = report.costs.find((c) => c.env === 'staging')!;
    expect(staging.baseUsd).toBe(0);
    expect(staging.headUsd).toBeGreaterThan(0);
    expect(report.costs.find((c) => c.env === 'dev')!.deltaUsd).toBe(0);
  });

  test('an environment only in the base is removed, and its buckets are flagged', () => {
    const { base, head } = fixturePair();
    base.staging = fixtureTemplates('baseline');
    const report = buildReport(base, head);
    expect(report.flags.filter((f) => f.destructive && f.env === 'staging' && f.resourceType === 'AWS::S3::Bucket')).toHaveLength(2);
    expect(exitCode(report)).toBe(EXIT_DESTRUCTIVE);
  });
});

describe('the Spot Fleet', () => {
  test('a new instance type replaces the fleet, although cloudformation-diff calls it an update', () => {
    const addType = (h: AssemblySet['dev']) =>
      props(h, GPU, FLEET).SpotFleetRequestConfigData.LaunchTemplateConfigs[0].Overrides.push({ InstanceType: 'g5.xlarge', SubnetId: { Ref: 'NetworkVpcPublicSubnet1Subnet36933139' } });
    const { base, head } = fixturePair();
    addType(head.dev);
    expect(fullDiff(base.dev![GPU]!, head.dev![GPU]!).resources.get(FLEET).changeImpact).toBe(ResourceImpact.WILL_UPDATE);
    const report = edited(addType);
    expect(resource(report, GPU, FLEET)).toMatchObject({ impact: 'replace', replacingPaths: ['SpotFleetRequestConfigData.LaunchTemplateConfigs'] });
    expect(report.flags[0]).toMatchObject({ destructive: true, logicalId: FLEET });
    expect(report.flags[0]!.message).toContain('the running GPU instance is terminated');
  });

  test('a new target capacity is an in-place update, not flagged', () => {
    const report = edited((h) => (props(h, GPU, FLEET).SpotFleetRequestConfigData.TargetCapacity = 1));
    expect(resource(report, GPU, FLEET)).toMatchObject({ impact: 'update', paths: ['SpotFleetRequestConfigData.TargetCapacity'] });
    expect(report.flags).toEqual([]);
  });
});

describe('the VPS deployment', () => {
  test('a new bundle redeploys the VPS: flagged for review, not destructive', () => {
    const report = edited((h) => (props(h, VPS, DEPLOYMENT).BundleHash = '0000000000000000'));
    expect(resource(report, VPS, DEPLOYMENT)).toMatchObject({ impact: 'update', paths: ['BundleHash'] });
    expect(report.flags).toEqual([expect.objectContaining({ kind: 'vps-redeploy', destructive: false, logicalId: DEPLOYMENT })]);
    expect(exitCode(report)).toBe(0);
  });

  test('a new host is a replacement that tears the old deployment down', () => {
    const report = edited((h) => (props(h, VPS, DEPLOYMENT).Host = 'vps2.example.com'));
    expect(resource(report, VPS, DEPLOYMENT)).toMatchObject({ impact: 'replace', replacingPaths: ['Host'] });
    expect(report.flags).toEqual([expect.objectContaining({ kind: 'stateful', destructive: true })]);
    expect(report.flags[0]!.message).toMatch(/^VPS deployment will be replaced \(changed: Host\): the deployment on the VPS is torn down/);
  });
});

describe('other flags and details', () => {
  test('an IAM statement that grants more is flagged with the statement', () => {
    const report = edited((h) => props(h, GPU, 'InstanceRoleDefaultPolicy1064ADAC').PolicyDocument.Statement.push({ Effect: 'Allow', Action: 's3:*', Resource: '*' }));
    const iam = report.flags.find((f) => f.kind === 'iam')!;
    expect(iam).toMatchObject({ destructive: false, stack: GPU });
    expect(iam.rows).toEqual([
      ['effect', 'action', 'resource', 'principal', 'condition'],
      ['Allow', 's3:*', '*', 'AWS:${InstanceRoleA57500A0}', ''],
    ]);
    expect(exitCode(report)).toBe(0);
  });

  describe('a new asset hash in an IAM statement', () => {
    const OLD_HASH = '8f87f29de51880dec23a409f729ca4610e73424d2825bc7c5728085c82d5f871';
    const NEW_HASH = 'a'.repeat(64);
    const POLICY = 'InstanceRoleDefaultPolicy1064ADAC';
    /** What every asset change does: the object key (`<hash>.zip`) changes wherever the template names it. */
    const newAssetHash = (h: AssemblySet['dev']) => (h![GPU] = JSON.parse(JSON.stringify(h![GPU]).replaceAll(OLD_HASH, NEW_HASH)));
    const statement = (h: AssemblySet['dev'], sid: string) => props(h, GPU, POLICY).PolicyDocument.Statement.find((s: { Sid: string }) => s.Sid === sid);

    test('alone is not flagged as widening IAM', () => {
      const report = edited(newAssetHash);
      expect(resource(report, GPU, POLICY)).toMatchObject({ impact: 'update' });
      expect(report.flags).toEqual([]);
    });

    test.each([
      ['a new action', (h: AssemblySet['dev']) => (statement(h, 'ReadBootstrapScripts').Action = ['s3:GetObject', 's3:PutObject']), /s3:PutObject/],
      ['a wider resource', (h: AssemblySet['dev']) => (statement(h, 'ReadModelsAndWorkflows').Resource[0]['Fn::Join'][1][4] = '/*'), /\}\/\*$/m],
      ['a removed condition', (h: AssemblySet['dev']) => delete statement(h, 'ListOwnPrefixes').Condition, /^Allow s3:ListBucket/],
    ])('next to it, %s is still flagged', (_what, widen, shown) => {
      const report = edited((h) => {
        newAssetHash(h);
        widen(h);
      });
      const iam = report.flags.filter((f) => f.kind === 'iam');
      expect(iam).toHaveLength(1);
      expect(iam[0]!.rows).toHaveLength(2);
      expect(iam[0]!.rows![1]!.join(' ')).toMatch(shown);
    });
  });

  test('removing a retained bucket orphans it: still flagged as destructive, with the policy named', () => {
    const report = edited(
      (h) => delete h![STORAGE]!.Resources[BUCKET],
      (b) => (b![STORAGE]!.Resources[BUCKET]!.DeletionPolicy = 'Retain'),
    );
    expect(resource(report, STORAGE, BUCKET)).toMatchObject({ action: 'removed', impact: 'orphan' });
    const flag = report.flags.find((f) => f.logicalId === BUCKET)!;
    expect(flag.destructive).toBe(true);
    expect(flag.message).toContain('kept by its Retain policy');
  });

  test('a metadata-only change is reported as such and flags nothing', () => {
    const report = edited((h) => (h![STORAGE]!.Resources[BUCKET]!.Metadata = { note: 'x' }));
    expect(resource(report, STORAGE, BUCKET)).toMatchObject({ impact: 'metadata', paths: ['Metadata'] });
    expect(report.flags).toEqual([]);
  });

  test('the template diff text never shows a value under a secret-looking key', () => {
    const secret = (value: string) => ({ Resources: { S: { Type: 'AWS::SecretsManager::Secret', Properties: { SecretString: value, Description: value } } } });
    const text = diffText(secret('hunter2-old'), secret('hunter2-new'));
    expect(text).toContain('Description');
    expect(text).toContain('hunter2-new'); // the non-secret Description shows...
    expect(text.match(/hunter2/g)).toHaveLength(2); // ...but SecretString's values do not
    expect(text).not.toContain('SecretString');
  });

  test('changedPaths names leaves, treats intrinsics and resized arrays as one value', () => {
    expect(changedPaths({ a: { b: 1, c: [1, 2] } }, { a: { b: 2, c: [1, 3] } })).toEqual(['a.b', 'a.c[1]']);
    expect(changedPaths({ a: [1] }, { a: [1, 2] })).toEqual(['a']);
    expect(changedPaths({ a: { Ref: 'X' } }, { a: { Ref: 'Y' } })).toEqual(['a']);
    expect(changedPaths({ a: 10 }, { a: '10' })).toEqual([]); // CloudFormation treats them alike
  });
});

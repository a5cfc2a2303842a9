import { z } from 'zod';
import { DAYS_PER_MONTH } from '../cost/month';
import { MAX_CONVERGE_TIMEOUT_SECONDS, UP_GRACE_SECONDS } from '../vps/gate-budget';
import { awsRegion, email, GPU_FAMILIES, gpuInstanceType, hostName, httpsUrl, ipv4Cidr, numberBetween, oneOf, pattern, positiveAmount, privateIpv4Cidr, publicHostName, wholeNumber, zeroOrMore } from './rules';
import { siteIssues } from './sites';

/**
 * The schema of one environment. Defaults live here so that the README's config
 * table (generated from this schema, see `configTableMarkdown`) can never drift.
 */

const storageSchema = z
  .strictObject({
    infrequentAccessDays: wholeNumber(30, 3650, 'days')
      .default(30)
      .describe('Days before generated/ and workflows/ objects move to STANDARD_IA (S3 requires at least 30). models/ stays in STANDARD: every GPU boot reads it.'),
    generatedArchiveDays: wholeNumber(60, 3650, 'days')
      .default(90)
      .describe('Days before generated/ objects move to GLACIER_IR (at least infrequentAccessDays + 30).'),
    noncurrentArchiveDays: wholeNumber(1, 365, 'days')
      .default(7)
      .describe('Days after an object is overwritten or deleted before its old version moves to GLACIER_IR.'),
    noncurrentExpirationDays: wholeNumber(2, 3650, 'days')
      .default(97)
      .describe('Days after which old versions are deleted (must exceed noncurrentArchiveDays; 97 = 7 + the 90-day Glacier minimum, so no early-deletion fee).'),
    abortMultipartDays: wholeNumber(1, 365, 'days').default(7).describe('Days before incomplete multipart uploads are aborted.'),
    accessLogRetentionDays: wholeNumber(1, 3650, 'days').default(90).describe('Days the server access logs are kept in the log bucket.'),
  })
  .superRefine((s, ctx) => {
    if (s.generatedArchiveDays < s.infrequentAccessDays + 30) {
      ctx.addIssue({
        code: 'custom',
        path: ['generatedArchiveDays'],
        input: s.generatedArchiveDays,
        message: `a whole number of days at least infrequentAccessDays + 30 (${s.infrequentAccessDays + 30}); S3 keeps objects 30 days in STANDARD_IA before the next transition`,
      });
    }
    if (s.noncurrentExpirationDays <= s.noncurrentArchiveDays) {
      ctx.addIssue({
        code: 'custom',
        path: ['noncurrentExpirationDays'],
        input: s.noncurrentExpirationDays,
        message: `a whole number of days greater than noncurrentArchiveDays (${s.noncurrentArchiveDays}); S3 rejects an expiration before the transition`,
      });
    }
  });

const gpuSchema = z.strictObject({
  instanceTypes: z
    .array(gpuInstanceType, { error: 'a list of 1 to 6 GPU instance types' })
    .min(1, { error: 'a list of 1 to 6 GPU instance types' })
    .max(6, { error: 'a list of 1 to 6 GPU instance types' })
    .superRefine((types, ctx) => {
      types.forEach((type, index) => {
        if (types.indexOf(type) === index) return;
        ctx.addIssue({ code: 'custom', path: [index], input: type, message: `an instance type not already listed (it is instanceTypes.${types.indexOf(type)})` });
      });
    })
    .meta({ allowed: `a list of 1 to 6 different x86_64 NVIDIA GPU instance types of family ${GPU_FAMILIES.join(', ')}` })
    .default(['g4dn.xlarge'])
    .describe('Spot Fleet instance types, one override per type and subnet (g5.xlarge and g6.xlarge diversify).'),
  idleMinutes: wholeNumber(5, 240, 'minutes')
    .default(5)
    .describe('Consecutive idle minutes before an idle instance leaves the fleet (5 keeps billed time beyond the work under 8% when the gateway wakes the GPU on demand; README, Cost).'),
  idleGpuUtilizationPercent: wholeNumber(1, 50, 'percent')
    .default(5)
    .describe('GPU utilization under which a minute counts as idle.'),
  bootGraceMinutes: wholeNumber(0, 60, 'minutes').default(10).describe('Minutes after boot during which idle shutdown never acts (model sync).'),
  rootVolumeGb: wholeNumber(75, 2000, 'GiB').default(100).describe('Encrypted gp3 root volume size (the DLAMI needs at least 75 GiB).'),
  amiParameter: pattern(
    /^\/aws\/service\/deeplearning\/ami\/x86_64\/[a-z0-9.-]+\/latest\/ami-id$/,
    'a public DLAMI SSM parameter path /aws/service/deeplearning/ami/x86_64/<ami-type>/latest/ami-id',
  )
    .default('/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id')
    .describe('Public SSM parameter of the Deep Learning AMI, resolved at deploy time.'),
  maxSpotPriceUsd: positiveAmount(50, 'USD per hour')
    .optional()
    .describe('Optional Spot price cap per instance-hour; unset means up to the on-demand price.'),
  initialCapacity: wholeNumber(0, 4, 'instances')
    .default(0)
    .describe('Target capacity the fleet is created with. Later deploys never reset a capacity changed at run time.'),
  maxInstances: wholeNumber(1, 8, 'instances')
    .default(1)
    .describe('Highest capacity the gateway may set (scale-out); the control function refuses more. At least initialCapacity.'),
  readyTimeoutMinutes: wholeNumber(1, 60, 'minutes').default(20).describe('How long `gpu start --wait` waits for ComfyUI.'),
}).superRefine((gpu, ctx) => {
  if (gpu.maxInstances < gpu.initialCapacity) {
    ctx.addIssue({
      code: 'custom',
      path: ['maxInstances'],
      input: gpu.maxInstances,
      message: `a whole number of instances from initialCapacity (${gpu.initialCapacity}) to 8: the fleet starts with initialCapacity instances, and the gateway may set no more than maxInstances`,
    });
  }
});

const observabilitySchema = z.strictObject({
  bucketSizeAlarmGb: wholeNumber(1, 100000, 'GB').default(200).describe('Alarm when the asset bucket holds more than this (all storage classes).'),
  noCapacityMinutes: wholeNumber(10, 1440, 'minutes')
    .refine((m) => m % 5 === 0, { error: 'a multiple of 5 minutes from 10 to 1440 (Spot Fleet metrics have 5-minute periods)' })
    .meta({ allowed: 'a multiple of 5 minutes from 10 to 1440' })
    .default(30)
    .describe('Alarm when the fleet stays below its target capacity this long (no Spot capacity).'),
  autoStopOnWatcherFailure: z
    .boolean({ error: 'true or false' })
    .meta({ allowed: 'true or false' })
    .default(false)
    .describe('When the on-box idle watcher has failed (GPU running and idle for twice its auto-stop threshold: idleMinutes, or the gpu autostop value), a function sets the fleet capacity to 0 itself.'),
});

const costProfileSchema = z.strictObject({
  gpuHoursPerDay: numberBetween(0, 24, 'hours').default(8).describe('GPU hours a day for the offline cost estimate.'),
  gpuDaysPerMonth: numberBetween(0, DAYS_PER_MONTH, 'days')
    .default(30.4)
    .describe('Days a month the GPU runs gpuHoursPerDay, for the estimate: 30.4 = every day (the average month), about 21.7 = working days only.'),
  storedGb: z
    .strictObject({
      models: zeroOrMore('GB').default(30).describe('GB under models/ (checkpoints, LoRAs; stays in STANDARD).'),
      generated: zeroOrMore('GB').default(69).describe('GB under generated/ (images; moves to STANDARD_IA, then GLACIER_IR).'),
      workflows: zeroOrMore('GB').default(1).describe('GB under workflows/ (moves to STANDARD_IA).'),
    })
    .prefault({})
    .describe('GB stored per prefix (models/, generated/, workflows/) for the estimate.'),
  s3RequestsPerMonth: z
    .strictObject({
      put: wholeNumber(0, 1_000_000_000).default(50_000).describe('PUT, COPY, POST and LIST requests a month.'),
      get: wholeNumber(0, 1_000_000_000).default(500_000).describe('GET requests a month.'),
    })
    .prefault({})
    .describe('S3 PUT/LIST and GET requests a month for the estimate.'),
  dataTransferOutGb: zeroOrMore('GB').default(10).describe('GB a month leaving AWS (images fetched by the VPS) for the estimate.'),
});

const networkSchema = z.strictObject({
  vpcCidr: privateIpv4Cidr(16, 24).default('10.40.0.0/16').describe('CIDR of the GPU VPC (public subnets only, no NAT gateway).'),
  azCount: wholeNumber(2, 3, 'availability zones')
    .default(2)
    .describe('Public subnets in this many AZs (the first ones Fn::GetAZs returns at deploy time; no lookup at synth).'),
  comfyuiIngressCidr: ipv4Cidr(32, 32).describe("The VPS address as a /32: the only source allowed to reach the GPU, on SSH (22/tcp) for the gateway's encrypted link (ComfyUI listens on the box's loopback only)."),
});

const gatewaySchema = z.strictObject({
  maxQueue: wholeNumber(1, 1000, 'prompts').default(100).describe('Prompts the gateway holds or runs at once; more are refused with 429.'),
  holdTimeoutMinutes: wholeNumber(1, 60, 'minutes')
    .default(15)
    .describe('How long a prompt may wait for a ready GPU before it fails with the reason (no Spot capacity, budget spent).'),
  promptsPerInstance: wholeNumber(1, 50, 'prompts')
    .default(4)
    .describe('Pending prompts per ready instance above which the gateway adds an instance (up to gpu.maxInstances).'),
  maxAttempts: wholeNumber(1, 5, 'submissions')
    .default(3)
    .describe('Submissions of one prompt, counting resubmissions after its instance was lost.'),
  outputCacheMb: wholeNumber(100, 20000, 'MB')
    .default(2000)
    .describe('Disk the gateway keeps finished images in for its signed /outputs links (oldest removed first).'),
  fallbackComfyuiUrl: httpsUrl
    .optional()
    .describe('Optional ComfyUI endpoint that receives held prompts when no GPU can be had (no Spot capacity in time, budget spent).'),
});

const vpsSchema = z.strictObject({
  host: hostName
    .describe('SSH host of the Hostinger VPS (DNS name or IPv4 address).'),
  sshPort: wholeNumber(1, 65535).default(22).describe('SSH port of the VPS.'),
  deployUser: pattern(/^(?!root$)[a-z_][a-z0-9_-]{0,31}$/, 'a Linux user name (lower case, digits, _ and -) other than root')
    .default('deploy')
    .describe('User the deployer logs in as (member of the docker group).'),
  hostKeySha256: pattern(/^SHA256:[A-Za-z0-9+/]{43}$/, 'an OpenSSH SHA256 fingerprint such as SHA256:abc…(43 characters)')
    .optional()
    .describe('Pinned host key fingerprint (`ssh-keyscan HOST | ssh-keygen -lf -`); deploys refuse to run without it.'),
  hostnames: z
    .strictObject({
      n8n: publicHostName.describe('Public host name of n8n.'),
      sim: publicHostName.describe('Public host name of Sim Studio.'),
      gateway: publicHostName
        .optional()
        .describe('Public host name of the gateway for clients outside the VPS (MCP at /mcp, the ComfyUI API at /comfyui/, both behind the bearer token); unset keeps the gateway inside the compose network (n8n and Sim still use it).'),
    })
    .describe('Host names nginx serves with Let\'s Encrypt TLS, one server block each.'),
  letsEncryptEmail: email.optional().describe("Let's Encrypt account e-mail; defaults to alertEmail."),
  gateway: gatewaySchema.prefault({}).describe('The gateway between the VPS and the GPU (one ComfyUI endpoint, wake on demand, MCP).'),
  sshKeySecretName: pattern(/^[A-Za-z0-9/_+=.@-]{1,512}$/, 'a Secrets Manager secret name (letters, digits and /_+=.@-)')
    .optional()
    .describe('Secrets Manager secret (created by the operator) holding the deploy user\'s SSH private key; defaults to `<App>/<env>/vps-ssh-key`.'),
  baseDir: pattern(/^(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)+$/, 'an absolute directory below / such as /opt, without . or .. parts or a trailing slash')
    .default('/opt')
    .describe('Releases live in `<baseDir>/<App>/<env>/` on the VPS.'),
  releasesToKeep: wholeNumber(2, 20, 'releases').default(5).describe('Releases kept on the VPS for rollback.'),
  convergeTimeoutSeconds: wholeNumber(60, MAX_CONVERGE_TIMEOUT_SECONDS, 'seconds')
    .default(MAX_CONVERGE_TIMEOUT_SECONDS)
    .describe(
      `How long \`docker compose up --wait\` may take before the release is rolled back (at most ${MAX_CONVERGE_TIMEOUT_SECONDS}, so the gate and a rollback, each with ${UP_GRACE_SECONDS} s to create containers, fit one 15-minute Lambda run).`,
    ),
  monthlyPriceUsd: positiveAmount(1000, 'USD').default(6.99).describe('Fixed monthly price of the VPS plan (KVM 2), added to cost reports.'),
})
  .superRefine((vps, ctx) => {
    for (const issue of siteIssues(vps)) ctx.addIssue({ code: 'custom', ...issue });
  });

export const environmentSchema = z.strictObject({
  appName: pattern(/^[A-Z][A-Za-z0-9]{1,19}$/, 'PascalCase letters and digits, 2 to 20 characters, e.g. AiAssets')
    .default('AiAssets')
    .describe('Prefix of every stack name (`<App>-<env>-<Part>`) and the value of the App tag.'),
  account: pattern(/^\d{12}$/, 'a 12-digit AWS account id')
    .optional()
    .describe('AWS account to deploy to; unset means the CLI credentials decide.'),
  region: awsRegion
    .default('us-east-1')
    .describe('AWS region of the GPU tier.'),
  removalPolicy: oneOf(['destroy', 'retain'])
    .default('retain')
    .describe('destroy: stateful resources are deleted with their data on teardown; retain: they are kept and the stateful stack has termination protection.'),
  alertEmail: email.describe('Receives alarms, budget notifications and Spot interruption notices.'),
  monthlyBudgetUsd: positiveAmount(100000, 'USD').default(50).describe('Monthly AWS cost budget.'),
  costCenter: pattern(/^(?=.*[A-Za-z0-9])[A-Za-z0-9 _.:/=+@-]{1,128}$/, 'a tag value of 1 to 128 letters, digits, spaces and _ . : / = + @ -, with at least one letter or digit')
    .optional()
    .describe('Value of the CostCenter cost-allocation tag; defaults to `<App>-<env>`.'),
  storage: storageSchema.prefault({}),
  gpu: gpuSchema.prefault({}),
  observability: observabilitySchema.prefault({}),
  costProfile: costProfileSchema.prefault({}),
  network: networkSchema,
  vps: vpsSchema,
});

export type EnvironmentInput = z.input<typeof environmentSchema>;
export type EnvironmentSettings = z.output<typeof environmentSchema>;
export type StorageSettings = EnvironmentSettings['storage'];
export type GpuSettings = EnvironmentSettings['gpu'];
export type ObservabilitySettings = EnvironmentSettings['observability'];
export type CostProfile = EnvironmentSettings['costProfile'];
export type VpsSettings = EnvironmentSettings['vps'];

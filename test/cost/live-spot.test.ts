import type { EC2Client } from '@aws-sdk/client-ec2';
import { liveSpotPrices } from '../../lib/cost/live-spot-prices';
import { currentSpotPrices } from '../../lib/ops/spot-price';
import { useMoto } from '../support/moto';
import { synthesized } from '../support/synth';
import { cliEnv, motoClients, patchEc2, runOps } from '../ops/fixtures';
import type { EstimateJson } from './run-cost';

// moto answers DescribeSpotPriceHistory with $0.00001 for every AZ that offers the type
// (us-east-1a, b, c, d and f for g4dn.xlarge in its offering data).
const MOTO_SPOT_USD = 0.00001;
const TODAY = '2026-11-23';

describe('live Spot prices for the estimate, against moto', () => {
  const moto = useMoto();
  const ec2 = (): EC2Client => motoClients(moto().endpoint).ec2;

  it('reads the price in effect now in every AZ that offers the type', async () => {
    const byAz = await currentSpotPrices(ec2(), 'g4dn.xlarge');
    expect([...byAz.keys()].sort()).toEqual(['us-east-1a', 'us-east-1b', 'us-east-1c', 'us-east-1d', 'us-east-1f']);
    expect([...byAz.values()].every((p) => p === MOTO_SPOT_USD)).toBe(true);
    expect([...(await currentSpotPrices(ec2(), 'g4dn.xlarge', 'us-east-1b')).keys()]).toEqual(['us-east-1b']);
  });

  it('keeps the newest price per AZ, averages over the AZs and states the range', async () => {
    const client = ec2();
    const at = (iso: string): Date => new Date(iso);
    patchEc2(client, {
      spotPriceHistory: [
        { AvailabilityZone: 'us-east-1a', InstanceType: 'g4dn.xlarge', SpotPrice: '0.300000', Timestamp: at('2026-11-23T08:00:00Z') },
        { AvailabilityZone: 'us-east-1a', InstanceType: 'g4dn.xlarge', SpotPrice: '0.200000', Timestamp: at('2026-11-23T10:00:00Z') },
        { AvailabilityZone: 'us-east-1b', InstanceType: 'g4dn.xlarge', SpotPrice: '0.100000', Timestamp: at('2026-11-23T09:00:00Z') },
        { AvailabilityZone: 'us-east-1c', InstanceType: 'g4dn.xlarge', SpotPrice: '0.150000', Timestamp: at('2026-11-23T09:00:00Z') },
        { AvailabilityZone: 'us-east-1c', InstanceType: 'g5.xlarge', SpotPrice: '0.900000', Timestamp: at('2026-11-23T11:00:00Z') },
      ],
    });
    expect(Object.fromEntries(await currentSpotPrices(client, 'g4dn.xlarge'))).toEqual({ 'us-east-1a': 0.2, 'us-east-1b': 0.1, 'us-east-1c': 0.15 });
    const prices = await liveSpotPrices(client, 'us-east-1', ['g4dn.xlarge'], new Date(`${TODAY}T12:00:00Z`));
    expect(prices['g4dn.xlarge'].usd).toBeCloseTo(0.15, 12);
    expect(prices['g4dn.xlarge'].source).toBe('DescribeSpotPriceHistory in us-east-1 (Linux/UNIX): average of 3 AZs, $0.10 to $0.20');
  });

  it('averages over the AZs, dated today, and refuses a type with no Spot offer', async () => {
    const prices = await liveSpotPrices(ec2(), 'us-east-1', ['g4dn.xlarge'], new Date(`${TODAY}T12:00:00Z`));
    expect(prices['g4dn.xlarge']).toEqual({
      usd: expect.closeTo(MOTO_SPOT_USD, 12),
      per: 'instance-hour',
      source: 'DescribeSpotPriceHistory in us-east-1 (Linux/UNIX): average of 5 AZs, $0.00001 to $0.00001',
      asOf: TODAY,
      note: expect.stringContaining('in effect when the estimate ran'),
    });
    await expect(liveSpotPrices(ec2(), 'us-east-1', ['g4dn.nope'], new Date())).rejects.toThrow(
      'EC2 reports no Linux Spot price for g4dn.nope in us-east-1: the type is not offered as Spot there.',
    );
  });

  it('cost estimate --live-spot-prices prices the GPU line with them (child process)', async () => {
    const dev = synthesized('dev');
    const run = await runOps(['cost', 'estimate', '--env', 'dev', '--cdk-out', dev.outdir, '--live-spot-prices', '--json'], cliEnv(moto().endpoint, { OPS_COST_TODAY: TODAY }));
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const [estimate] = (JSON.parse(run.stdout) as EstimateJson).environments;
    expect(estimate.lines[0]).toMatchObject({ item: 'EC2 Spot GPU (g4dn.xlarge)', unitPriceUsd: expect.closeTo(MOTO_SPOT_USD, 12), asOf: TODAY });
    expect(estimate.givenSpotPrice).toEqual({ source: expect.stringMatching(/^DescribeSpotPriceHistory in us-east-1 /), asOf: TODAY });
    // A near-free GPU: the budget holds all day.
    expect(estimate.budgetGpuHoursPerDay).toBe(24);
  });

  it('without credentials it stops with exit code 6 and says what to set', async () => {
    const env = cliEnv(moto().endpoint);
    delete env.AWS_ACCESS_KEY_ID;
    delete env.AWS_SECRET_ACCESS_KEY;
    const run = await runOps(['cost', 'estimate', '--env', 'dev', '--cdk-out', synthesized('dev').outdir, '--live-spot-prices'], env);
    expect(run.code).toBe(6);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^error: No AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/);
  });
});

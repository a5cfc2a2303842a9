import { computeBudget, formatBudgetLine, type BudgetInputs } from '../../lib/gpu-control/budget';
import type { FleetMember } from '../../lib/gpu-control/fleet';
import { splitByMonth } from '../../lib/gpu-control/month';
import { settingsFromEnvironment, settingsToEnvironment } from '../../lib/gpu-control/settings';

// The arithmetic of the budget and the ledger's month split, without AWS.
const member = (over: Partial<FleetMember>): FleetMember => ({
  instanceId: 'i-1',
  instanceType: 'g4dn.xlarge',
  state: 'running',
  publicIp: null,
  privateIp: null,
  launchTime: '2031-03-10T10:00:00.000Z',
  ready: true,
  leaving: false,
  busyUntil: null,
  hostKeySha256: null,
  billed: false,
  ...over,
});

const base: BudgetInputs = {
  now: new Date('2031-03-10T12:00:00Z'),
  allowanceUsd: 10,
  spotPrices: { 'g4dn.xlarge': 0.2, 'g5.xlarge': 0.4 },
  ledgerSeconds: {},
  members: [],
  override: null,
};

describe('computeBudget', () => {
  test('ledger seconds and live instances, each at its type price', () => {
    const budget = computeBudget({ ...base, ledgerSeconds: { 'g5.xlarge': 36_000 }, members: [member({})] });
    // 10 h x $0.40 + 2 h x $0.20
    expect(budget).toEqual({ month: '2031-03', allowanceUsd: 10, usedUsd: 4.4, leftUsd: 5.6, hoursLeft: 14, spent: false, overridden: false });
  });

  test('a live instance launched last month counts from the month start', () => {
    const budget = computeBudget({ ...base, now: new Date('2031-03-01T03:00:00Z'), members: [member({ launchTime: '2031-02-28T23:00:00.000Z' })] });
    expect(budget.usedUsd).toBe(0.6);
  });

  test('stopped, terminated, pending-without-launch and already-recorded instances add nothing', () => {
    const members = [member({ state: 'stopped' }), member({ state: 'terminated' }), member({ launchTime: null, state: 'pending' }), member({ billed: true })];
    expect(computeBudget({ ...base, members }).usedUsd).toBe(0);
  });

  test('a type without a configured price counts at the dearest one', () => {
    expect(computeBudget({ ...base, ledgerSeconds: { 'g6.xlarge': 3600 } }).usedUsd).toBe(0.4);
  });

  test('spent at or above the allowance; an allowance of 0 is always spent; the override is for one month only', () => {
    expect(computeBudget({ ...base, ledgerSeconds: { 'g5.xlarge': 90_000 } })).toMatchObject({ usedUsd: 10, leftUsd: 0, hoursLeft: 0, spent: true });
    expect(computeBudget({ ...base, allowanceUsd: 0 }).spent).toBe(true);
    expect(computeBudget({ ...base, override: '2031-03' }).overridden).toBe(true);
    expect(computeBudget({ ...base, override: '2031-02' }).overridden).toBe(false);
  });

  test('the status line', () => {
    const budget = computeBudget({ ...base, ledgerSeconds: { 'g5.xlarge': 36_000 } });
    expect(formatBudgetLine(budget)).toBe('GPU allowance: $4.00 of $10.00 used this month, $6.00 (15 h) left');
    expect(formatBudgetLine({ ...budget, spent: true })).toMatch(/; spent: waking the GPU is refused until the month ends \(override: gpu start --over-budget\)$/);
    expect(formatBudgetLine({ ...budget, spent: true, overridden: true })).toMatch(/; an operator override allows waking past it in 2031-03$/);
  });
});

describe('splitByMonth', () => {
  test('across a year end, each slice stamped inside its month', () => {
    const slices = splitByMonth(new Date('2031-12-31T23:30:00Z'), new Date('2032-01-01T00:15:00Z'));
    expect(slices.map((s) => [s.month, s.seconds, s.end.toISOString()])).toEqual([
      ['2031-12', 1800, '2031-12-31T23:59:59.999Z'],
      ['2032-01', 900, '2032-01-01T00:15:00.000Z'],
    ]);
  });

  test('a run through all of a leap February', () => {
    const slices = splitByMonth(new Date('2032-01-31T12:00:00Z'), new Date('2032-03-01T12:00:00Z'));
    expect(slices.map((s) => [s.month, s.seconds])).toEqual([
      ['2032-01', 12 * 3600],
      ['2032-02', 29 * 86_400],
      ['2032-03', 12 * 3600],
    ]);
  });

  test('an empty or reversed run has no slice', () => {
    const t = new Date('2031-05-05T00:00:00Z');
    expect(splitByMonth(t, t)).toEqual([]);
    expect(splitByMonth(t, new Date(t.getTime() - 1))).toEqual([]);
  });
});

describe('settings', () => {
  const settings = { appName: 'AiAssets', envName: 'dev', fleetId: 'sfr-1', maxInstances: 2, assetBucket: 'b', allowanceUsd: 30.09, spotPrices: { 'g4dn.xlarge': 0.1766 } };

  test('round-trip through the environment variables', () => expect(settingsFromEnvironment(settingsToEnvironment(settings))).toEqual(settings));

  test.each([
    ['MAX_INSTANCES', '0', /^MAX_INSTANCES is "0": allowed is a whole number of 1 or more/],
    ['GPU_ALLOWANCE_USD', 'lots', /^GPU_ALLOWANCE_USD is "lots": allowed is a number of USD of 0 or more/],
    ['GPU_SPOT_PRICES_USD', '{"g4dn.xlarge":"cheap"}', /^GPU_SPOT_PRICES_USD is .*: allowed is a JSON object of instance type to USD per hour above 0/],
    ['FLEET_ID', '', /^FLEET_ID is not set: the control function needs APP_NAME, ENV_NAME, FLEET_ID/],
  ])('%s=%p is refused naming the variable and what is allowed', (name, value, message) => {
    expect(() => settingsFromEnvironment({ ...settingsToEnvironment(settings), [name]: value })).toThrow(message);
  });
});

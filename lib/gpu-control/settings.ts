/**
 * What the control function knows about its environment, passed as Lambda environment variables
 * by lib/gpu-control.ts (`settingsToEnvironment`) and read back here, so the names live in one place.
 */
export interface ControlSettings {
  readonly appName: string;
  readonly envName: string;
  /** The Spot Fleet request (sfr-...) this function may change; nothing else. */
  readonly fleetId: string;
  /** The highest target capacity set-capacity accepts (config gpu.maxInstances). */
  readonly maxInstances: number;
  readonly assetBucket: string;
  /** The month's GPU allowance in USD: monthlyBudgetUsd minus the fixed floor (lib/cost/gpu-allowance.ts). */
  readonly allowanceUsd: number;
  /** USD per instance-hour by instance type (the configured types' Spot prices from lib/cost/prices.ts). */
  readonly spotPrices: Readonly<Record<string, number>>;
}

const VARIABLES = {
  appName: 'APP_NAME',
  envName: 'ENV_NAME',
  fleetId: 'FLEET_ID',
  maxInstances: 'MAX_INSTANCES',
  assetBucket: 'ASSET_BUCKET',
  allowanceUsd: 'GPU_ALLOWANCE_USD',
  spotPrices: 'GPU_SPOT_PRICES_USD',
} as const satisfies Record<keyof ControlSettings, string>;

/** The function's environment variables for these settings. */
export function settingsToEnvironment(settings: ControlSettings): Record<string, string> {
  return {
    [VARIABLES.appName]: settings.appName,
    [VARIABLES.envName]: settings.envName,
    [VARIABLES.fleetId]: settings.fleetId,
    [VARIABLES.maxInstances]: String(settings.maxInstances),
    [VARIABLES.assetBucket]: settings.assetBucket,
    [VARIABLES.allowanceUsd]: String(settings.allowanceUsd),
    [VARIABLES.spotPrices]: JSON.stringify(settings.spotPrices),
  };
}

/** Reads the settings; a missing or malformed variable is an error naming it, its value and what is allowed. */
export function settingsFromEnvironment(env: Readonly<Record<string, string | undefined>>): ControlSettings {
  const text = (key: keyof typeof VARIABLES): string => {
    const value = env[VARIABLES[key]];
    if (!value) throw new Error(`${VARIABLES[key]} is not set: the control function needs ${Object.values(VARIABLES).join(', ')} (lib/gpu-control.ts sets them)`);
    return value;
  };
  const number = (key: keyof typeof VARIABLES, allowed: string, ok: (n: number) => boolean): number => {
    const raw = text(key);
    const value = Number(raw);
    if (!ok(value)) throw new Error(`${VARIABLES[key]} is ${JSON.stringify(raw)}: allowed is ${allowed}`);
    return value;
  };
  const pricesRaw = text('spotPrices');
  let prices: unknown;
  try {
    prices = JSON.parse(pricesRaw);
  } catch {
    prices = undefined;
  }
  const valid =
    prices !== null &&
    typeof prices === 'object' &&
    !Array.isArray(prices) &&
    Object.keys(prices).length > 0 &&
    Object.values(prices).every((p) => typeof p === 'number' && Number.isFinite(p) && p > 0);
  if (!valid) throw new Error(`${VARIABLES.spotPrices} is ${JSON.stringify(pricesRaw)}: allowed is a JSON object of instance type to USD per hour above 0, e.g. {"g4dn.xlarge":0.18}`);
  return {
    appName: text('appName'),
    envName: text('envName'),
    fleetId: text('fleetId'),
    maxInstances: number('maxInstances', 'a whole number of 1 or more (config gpu.maxInstances)', (n) => Number.isInteger(n) && n >= 1),
    assetBucket: text('assetBucket'),
    allowanceUsd: number('allowanceUsd', 'a number of USD of 0 or more', (n) => Number.isFinite(n) && n >= 0),
    spotPrices: prices as Record<string, number>,
  };
}

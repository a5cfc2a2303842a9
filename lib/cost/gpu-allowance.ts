import type { EnvironmentConfig } from '../config/load';
import type { CfnTemplate } from '../synth';
import { estimateEnvironment } from './estimate';
import { HOURS_PER_MONTH } from './month';
import { regionPrices } from './prices';

/**
 * The month's GPU allowance (the budget guard's number): monthlyBudgetUsd minus the fixed floor,
 * i.e. the offline estimate at 0 GPU hours (VPS, storage, monitoring, secrets, ...). Free tiers count
 * as in the README's estimate (as if the environment had the account to itself): with several
 * environments in one account the allowance is that much too generous, and the account-wide AWS
 * budget alarm is the backstop (the account total of `cost estimate` over several environments shows the difference).
 */
export interface GpuAllowance {
  /** USD a month the GPU may use; 0 when the floor alone reaches the budget. */
  readonly allowanceUsd: number;
  /** The estimate at 0 GPU hours. */
  readonly floorUsd: number;
  /** USD per instance-hour of each configured type: typical Spot (lib/cost/prices.ts) plus its root volume and public IPv4 address. */
  readonly spotPrices: Record<string, number>;
}

const cents = (usd: number): number => Math.round(usd * 100) / 100;

/**
 * What an hour of each configured type costs while it runs: its typical Spot price plus what bills
 * only while an instance exists (its gp3 root volume and public IPv4 address, as the estimate
 * prices them), so the guard does not under-count GPU time by those ~$0.016 an hour. A type
 * without a price is an error naming the table.
 */
export function gpuSpotPrices(config: Pick<EnvironmentConfig, 'region' | 'gpu'>): Record<string, number> {
  const prices = regionPrices(config.region);
  const whileRunning = (config.gpu.rootVolumeGb * prices.ebs.gp3GbMonth.usd) / HOURS_PER_MONTH + prices.publicIpv4Hour.usd;
  return Object.fromEntries(
    config.gpu.instanceTypes.map((type) => {
      const price = prices.instances[type];
      if (!price) {
        throw new Error(
          `gpu.instanceTypes has ${type}, which has no price for ${config.region} in lib/cost/prices.ts (the budget guard prices GPU time with it); the table has ${Object.keys(prices.instances).join(', ')}.`,
        );
      }
      return [type, Math.round((price.spot.usd + whileRunning) * 1e6) / 1e6];
    }),
  );
}

/** What the measuring pass builds with: the same resources, an allowance of 0. */
export function measuringAllowance(config: EnvironmentConfig): GpuAllowance {
  return { allowanceUsd: 0, floorUsd: 0, spotPrices: gpuSpotPrices(config) };
}

/** The allowance from an environment's synthesized templates (the measuring pass's). */
export function gpuAllowance(config: EnvironmentConfig, templates: Record<string, CfnTemplate>): GpuAllowance {
  const atZero = { ...config, costProfile: { ...config.costProfile, gpuHoursPerDay: 0 } };
  const floorUsd = cents(estimateEnvironment(atZero, templates).totalUsd);
  return { allowanceUsd: cents(Math.max(0, config.monthlyBudgetUsd - floorUsd)), floorUsd, spotPrices: gpuSpotPrices(config) };
}

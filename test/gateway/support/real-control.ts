import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import type { ControlClient, ControlRequest, ControlResponse } from '../../../lib/gpu-control/protocol';
import { budgetOverrideParameterName } from '../../../lib/gpu-control/names';
import { settingsToEnvironment } from '../../../lib/gpu-control/settings';
import { motoEnv } from '../../support/moto';

export const APP_NAME = 'AiAssets';
export const ENV_NAME = 'test';
const SPOT_PRICES = { 'g4dn.xlarge': 0.2 };

type Handler = (event: unknown) => Promise<unknown>;

export interface ControlOptions {
  readonly maxInstances?: number;
  /** The month's GPU allowance; 0 makes it spent from the start. */
  readonly allowanceUsd?: number;
}

/**
 * The real control function (assets/lambda/gpu-control/index.ts `handler`) called in-process
 * against moto: the gateway's tests exercise the same status, set-capacity, lease and budget
 * code the VPS invokes. Its settings are its Lambda environment (lib/gpu-control/settings.ts),
 * set on this process. Every request is logged; `beforeLease` lets a test hold a lease at the
 * moment it wants (the watcher race).
 */
export class RealControl implements ControlClient {
  readonly calls: ControlRequest[] = [];
  beforeLease: ((instanceIds: readonly string[]) => Promise<void>) | null = null;

  private constructor(private readonly handler: Handler) {}

  /** Loads the handler with moto's endpoint (its SDK clients are made when the module loads). */
  static async load(motoEndpoint: string): Promise<RealControl> {
    Object.assign(process.env, motoEnv(motoEndpoint), { AWS_EC2_METADATA_DISABLED: 'true' });
    const { handler } = (await import('../../../assets/lambda/gpu-control/index')) as { handler: Handler };
    return new RealControl(handler);
  }

  /** Points the function at this test's fleet (it reads its settings on every call). */
  configure(fleetId: string, options: ControlOptions = {}): void {
    Object.assign(
      process.env,
      settingsToEnvironment({
        appName: APP_NAME,
        envName: ENV_NAME,
        fleetId,
        maxInstances: options.maxInstances ?? 1,
        assetBucket: 'aiassets-test-assets',
        allowanceUsd: options.allowanceUsd ?? 30,
        spotPrices: SPOT_PRICES,
      }),
    );
  }

  async call(request: ControlRequest): Promise<ControlResponse> {
    this.calls.push(request);
    if (request.action === 'lease' && this.beforeLease) await this.beforeLease(request.instanceIds);
    return (await this.handler(request)) as ControlResponse;
  }

  /** The raises and lowers the gateway asked for, in order. */
  capacityChanges(): number[] {
    return this.calls.flatMap((c) => (c.action === 'set-capacity' ? [c.capacity] : []));
  }

  /** What an operator's `gpu start --over-budget` stores: the month in which waking past the allowance is allowed. */
  async overrideBudget(ssm: SSMClient, month: string): Promise<void> {
    await ssm.send(new PutParameterCommand({ Name: budgetOverrideParameterName({ appName: APP_NAME, envName: ENV_NAME }), Value: month, Type: 'String', Overwrite: true }));
  }
}

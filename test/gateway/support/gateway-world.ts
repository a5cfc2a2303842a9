import { EC2Client } from '@aws-sdk/client-ec2';
import { SSMClient } from '@aws-sdk/client-ssm';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Redis } from 'ioredis';
import { DirectUpstream } from '../../../assets/gateway/direct-upstream';
import { startGateway, type RunningGateway } from '../../../assets/gateway/gateway-service';
import { loadSettings, type GatewaySettings } from '../../../assets/gateway/settings';
import { useMoto, type MotoServer } from '../../support/moto';
import { createFleet } from '../../support/moto-fleet';
import { FleetBoxes, type FleetBoxesOptions } from './fleet-boxes';
import { RealControl, type ControlOptions } from './real-control';
import { useRedis } from './redis-server';

export const LINK_SECRET = 'test-output-link-secret-0123456789abcdef';

export interface WorldOptions extends ControlOptions {
  readonly initialCapacity?: number;
  readonly boxes?: FleetBoxesOptions;
  readonly settings?: Partial<GatewaySettings>;
  /** Start the gateway later (startGateway()), e.g. to set control hooks first. */
  readonly noGateway?: boolean;
}

export interface World {
  readonly moto: MotoServer;
  readonly ec2: EC2Client;
  readonly ssm: SSMClient;
  readonly fleetId: string;
  readonly control: RealControl;
  readonly boxes: FleetBoxes;
  readonly redisUrl: string;
  readonly outputDir: string;
  readonly logs: string[];
  gateway: RunningGateway | null;
  /** The gateway's ComfyUI base URL (http://127.0.0.1:PORT/comfyui). */
  comfy: string;
  startGateway(): Promise<RunningGateway>;
}

/** Gateway settings for tests: fast loops, everything else as in production. */
export function testSettings(redisUrl: string, outputDir: string, overrides: Partial<GatewaySettings> = {}): GatewaySettings {
  return {
    ...loadSettings({ REDIS_URL: redisUrl, OUTPUT_LINK_SECRET: LINK_SECRET, OUTPUT_DIR: outputDir, PUBLIC_BASE_URL: 'https://gateway.example.com' }),
    port: 0,
    pollIntervalMs: 50,
    statusIntervalMs: 150,
    unreachableGraceSeconds: 2,
    ...overrides,
  };
}

/**
 * Everything around one gateway for a test file: moto (fleet, tags, SSM, CloudWatch), the real
 * control function in-process, Debian's redis-server, one ComfyUI stand-in per instance the fleet
 * launches, and the gateway itself in-process, reaching each stand-in directly.
 */
export function useGatewayWorld(): (options?: WorldOptions) => Promise<World> {
  const moto = useMoto();
  const redis = useRedis();
  let control: RealControl | undefined;
  let world: World | undefined;
  const cleanups: Array<() => Promise<void> | void> = [];

  beforeAll(async () => {
    control = await RealControl.load(moto().endpoint);
    // The control function logs each capacity change; GATEWAY_TEST_LOG=1 shows them (and the gateway's log).
    if (!process.env.GATEWAY_TEST_LOG) jest.spyOn(console, 'log').mockImplementation(() => undefined);
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    if (world && process.env.GATEWAY_TEST_LOG) console.log(world.logs.join('\n'));
    world = undefined;
  });

  return async (options = {}) => {
    const clients = { endpoint: moto().endpoint, region: 'us-east-1', credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
    const ec2 = new EC2Client(clients);
    const ssm = new SSMClient(clients);
    cleanups.push(() => ec2.destroy(), () => ssm.destroy());
    const flush = new Redis(redis().url);
    await flush.flushdb();
    flush.disconnect();
    const fleetId = await createFleet(ec2, options.initialCapacity ?? 0);
    control!.configure(fleetId, options);
    control!.calls.length = 0;
    control!.beforeLease = null;
    const boxes = new FleetBoxes(ec2, fleetId, options.boxes);
    boxes.start();
    cleanups.push(() => boxes.stop());
    const outputDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gateway-outputs-'));
    cleanups.push(() => fs.rmSync(outputDir, { recursive: true, force: true }));
    const logs: string[] = [];
    const w: World = {
      moto: moto(),
      ec2,
      ssm,
      fleetId,
      control: control!,
      boxes,
      redisUrl: redis().url,
      outputDir,
      logs,
      gateway: null,
      comfy: '',
      startGateway: async () => {
        const gateway = await startGateway(testSettings(redis().url, outputDir, options.settings), {
          control: control!,
          upstream: new DirectUpstream((instance) => boxes.urlOf(instance.instanceId)),
          host: '127.0.0.1',
          log: (line) => logs.push(`${new Date().toISOString()} ${line}`),
        });
        cleanups.push(() => gateway.close());
        w.gateway = gateway;
        w.comfy = `${gateway.url}/comfyui`;
        return gateway;
      },
    };
    world = w;
    if (!options.noGateway) await w.startGateway();
    return w;
  };
}

import type * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import type { ControlClient } from '../../lib/gpu-control/protocol';
import { Dispatcher } from './dispatcher';
import { FleetView } from './fleet-view';
import { GatewayCore } from './gateway-core';
import { createGatewayServer, type MountedRoute } from './http-server';
import { FALLBACK_TARGET, JobStore } from './job-store';
import { JobTracker } from './job-tracker';
import { Leases } from './leases';
import { isQuiet, Metrics } from './metrics';
import { OutputStore } from './output-store';
import type { GatewaySettings } from './settings';
import type { Upstream } from './upstream';
import { Waker } from './waker';
import { WsRelay } from './ws-relay';

export interface GatewayDeps {
  readonly control: ControlClient;
  readonly upstream: Upstream;
  /** Other front ends on the same port (the MCP endpoint). */
  readonly mounts?: readonly MountedRoute[];
  readonly log?: (line: string) => void;
  /** Listen address; the container listens on every address, tests on loopback. */
  readonly host?: string;
}

export interface RunningGateway {
  readonly api: GatewayCore;
  readonly server: http.Server;
  /** http://host:port of the listening server. */
  readonly url: string;
  close(): Promise<void>;
}

/** Builds the gateway from its parts and starts serving and dispatching (main.ts, tests and the benchmark). */
export async function startGateway(settings: GatewaySettings, deps: GatewayDeps): Promise<RunningGateway> {
  const log = deps.log ?? ((line: string) => console.log(`${new Date().toISOString()} ${line}`));
  const redis = new Redis(settings.redisUrl, { maxRetriesPerRequest: 3, lazyConnect: true });
  redis.on('error', (error: Error) => log(`redis: ${error.message}`));
  await redis.connect();
  const retentionSeconds = settings.jobRetentionHours * 3600;
  const store = new JobStore(redis, retentionSeconds);
  const metrics = new Metrics(redis);
  const fleet = new FleetView(deps.control);
  const waker = new Waker(fleet, metrics, log);
  const leases = new Leases(fleet, settings.leaseSeconds, settings.leaseRenewSeconds, log);
  const outputs = new OutputStore(settings.outputDir, settings.outputCacheBytes, redis, retentionSeconds, log);
  const tracker = new JobTracker(store, deps.upstream, outputs, metrics, settings, log);
  let dispatcher: Dispatcher | undefined;
  const relay = new WsRelay(
    {
      // A client (re)connecting gets the sockets to the boxes its running prompts are on.
      connected: (clientId) => {
        void (async () => {
          for (const job of await store.getMany(await store.activeIds())) {
            if (job.clientId !== clientId || !job.instanceId) continue;
            const instance = fleet.status?.instances.find((i) => i.instanceId === job.instanceId);
            const base = job.instanceId === FALLBACK_TARGET ? settings.fallbackComfyuiUrl : instance ? await deps.upstream.baseUrl(instance) : null;
            if (base) await relay.prepare(clientId, job.instanceId, base);
          }
        })().catch((error: Error) => log(`ws ${clientId}: ${error.message}`));
      },
      finished: () => dispatcher?.kick(),
    },
    log,
  );
  dispatcher = new Dispatcher(store, fleet, waker, leases, tracker, deps.upstream, metrics, relay, settings, log);
  const api = new GatewayCore(store, fleet, waker, dispatcher, settings);
  const server = createGatewayServer({
    core: api,
    store,
    dispatcher,
    fleet,
    upstream: deps.upstream,
    outputs,
    fallbackComfyuiUrl: settings.fallbackComfyuiUrl,
    redis,
    relay,
    outputLinkSecret: settings.outputLinkSecret,
    mounts: deps.mounts ?? [],
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(settings.port, deps.host ?? '0.0.0.0', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  dispatcher.start();

  // Custom metrics bill by the hour they are sent: after one quiet report (the dashboard drops to
  // 0) an idle gateway stays silent until work comes.
  let lastQuiet = false;
  const reportTimer = setInterval(() => {
    void (async () => {
      const { held, active } = await store.counts();
      const taken = await metrics.take(held, active);
      const quiet = isQuiet(taken);
      if (quiet && lastQuiet) return;
      lastQuiet = quiet;
      try {
        await fleet.call({ action: 'report', metrics: taken });
      } catch (error) {
        log(`metrics report failed: ${(error as Error).message}`);
        lastQuiet = false;
        await metrics.giveBack(taken);
      }
    })().catch((error: Error) => log(`metrics: ${error.message}`));
  }, settings.metricsIntervalSeconds * 1000);
  log(`gateway listening on ${port}`);

  return {
    api,
    server,
    url: `http://${deps.host ?? '127.0.0.1'}:${port}`,
    close: async () => {
      clearInterval(reportTimer);
      await dispatcher.stop();
      relay.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await deps.upstream.close();
      redis.disconnect();
    },
  };
}

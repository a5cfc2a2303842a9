#!/usr/bin/env node
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DirectUpstream } from '../assets/gateway/direct-upstream';
import { startGateway } from '../assets/gateway/gateway-service';
import { loadSettings } from '../assets/gateway/settings';
import type { ControlClient, ControlInstance, ControlResponse, ControlStatus } from '../lib/gpu-control/protocol';
import { textTable } from '../lib/cost/text-table';
import { ComfyUiStandIn } from '../test/gateway/support/comfyui-stand-in';
import { startRedis } from '../test/gateway/support/redis-server';

/**
 * What the gateway adds in front of ComfyUI, measured in one run against the same ComfyUI
 * stand-in (test/gateway/support/comfyui-stand-in.ts) reached directly and through the gateway
 * (real redis-server, one ready instance): per-request latency of a proxied call (GET
 * /system_stats, p50 and p99 over --requests, direct and proxied calls interleaved) and /view
 * throughput of a --view-mb file (best of --runs). Not a timed test: the figures go into the
 * README. Usage: npx tsx bin/bench-gateway.ts [--requests N] [--view-mb M] [--runs R]
 */

const INSTANCE: ControlInstance = {
  instanceId: 'i-0bench000000000000',
  instanceType: 'g4dn.xlarge',
  state: 'running',
  publicIp: null,
  privateIp: null,
  launchTime: null,
  ready: true,
  leaving: false,
  busyUntil: null,
  hostKeySha256: null,
};

/** A fleet of one ready box that never changes: the control path is not what is measured. */
class OneBoxControl implements ControlClient {
  async call(): Promise<ControlResponse> {
    const status: ControlStatus = {
      fleetId: 'sfr-bench',
      targetCapacity: 1,
      fulfilledCapacity: 1,
      maxInstances: 1,
      instances: [INSTANCE],
      budget: { month: '2025-01', allowanceUsd: 30, usedUsd: 0, leftUsd: 30, hoursLeft: 150, spent: false, overridden: false },
    };
    return { ok: true, status };
  }
}

export interface GatewayBenchOptions {
  readonly requests: number;
  readonly viewMb: number;
  readonly runs: number;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function timed(url: string): Promise<{ ms: number; bytes: number }> {
  const started = process.hrtime.bigint();
  const response = await fetch(url);
  if (response.status !== 200) throw new Error(`GET ${url} answered HTTP ${response.status}`);
  const bytes = (await response.arrayBuffer()).byteLength;
  return { ms: Number(process.hrtime.bigint() - started) / 1e6, bytes };
}

/** Runs the benchmark and returns the table's lines. */
export async function benchGateway(options: GatewayBenchOptions): Promise<string[]> {
  const redis = await startRedis();
  const box = new ComfyUiStandIn();
  const direct = await box.start();
  const outputDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-gateway-'));
  const settings = { ...loadSettings({ REDIS_URL: redis.url, OUTPUT_LINK_SECRET: 'b'.repeat(32), OUTPUT_DIR: outputDir }), port: 0 };
  const gateway = await startGateway(settings, { control: new OneBoxControl(), upstream: new DirectUpstream(() => direct), host: '127.0.0.1', log: () => undefined });
  try {
    const via = `${gateway.url}/comfyui`;
    const bytes = Buffer.alloc(options.viewMb * 1024 * 1024, 7);
    box.putFile('output', '', 'bench.png', bytes);
    // Warm up both paths (connections, JIT, the gateway's first fleet status).
    for (let i = 0; i < 50; i++) await Promise.all([timed(`${direct}/system_stats`), timed(`${via}/system_stats`)]);
    const latency = { direct: [] as number[], via: [] as number[] };
    for (let i = 0; i < options.requests; i++) {
      latency.direct.push((await timed(`${direct}/system_stats`)).ms);
      latency.via.push((await timed(`${via}/system_stats`)).ms);
    }
    const view = `/view?filename=bench.png&subfolder=&type=output`;
    const throughput = { direct: 0, via: 0 };
    for (let run = 0; run < options.runs; run++) {
      for (const [key, base] of [['direct', direct], ['via', via]] as const) {
        const { ms, bytes: got } = await timed(`${base}${view}`);
        if (got !== bytes.length) throw new Error(`${key} /view returned ${got} bytes, not ${bytes.length}`);
        throughput[key] = Math.max(throughput[key], got / 1024 / 1024 / (ms / 1000));
      }
    }
    const sorted = { direct: [...latency.direct].sort((a, b) => a - b), via: [...latency.via].sort((a, b) => a - b) };
    const ms = (n: number) => `${n.toFixed(2)} ms`;
    const rows = [50, 99].map((p) => {
      const [d, v] = [percentile(sorted.direct, p), percentile(sorted.via, p)];
      return [`GET /system_stats p${p}`, ms(d), ms(v), ms(v - d)];
    });
    rows.push([`GET /view ${options.viewMb} MB`, `${throughput.direct.toFixed(0)} MB/s`, `${throughput.via.toFixed(0)} MB/s`, `${((1 - throughput.via / throughput.direct) * 100).toFixed(0)}% slower`]);
    return [
      `gateway overhead: ${options.requests} requests per path, /view best of ${options.runs}, Node ${process.version}, ${os.cpus().length} CPUs`,
      ...textTable(['', 'direct', 'through the gateway', 'added'], rows, [1, 2]),
    ];
  } finally {
    await gateway.close();
    await box.kill();
    await redis.stop();
    fs.rmSync(outputDir, { recursive: true, force: true });
  }
}

function flag(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} is "${process.argv[at + 1]}": allowed is a whole number of 1 or more`);
  return value;
}

if (require.main === module) {
  benchGateway({ requests: flag('--requests', 2000), viewMb: flag('--view-mb', 64), runs: flag('--runs', 5) })
    .then((lines) => console.log(lines.join('\n')))
    .catch((error: Error) => {
      console.error(error.message);
      process.exit(1);
    });
}

import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One answer: a JSON body, or an AWS JSON-protocol error (`__type` + message, HTTP 400). */
export type FakeAnswer = { readonly body: unknown } | { readonly error: string; readonly message: string; readonly status?: number };

export interface FakeCostExplorer {
  readonly endpoint: string;
  /** Every request received: the operation (from X-Amz-Target) and its JSON body. */
  readonly requests: Array<{ operation: string; body: Record<string, unknown> }>;
  close(): Promise<void>;
}

/**
 * A stand-in for the Cost Explorer endpoint on 127.0.0.1 that answers the way AWS's JSON 1.1
 * protocol does, for what moto cannot produce: GetCostForecast and the "not enabled" errors.
 */
export async function startFakeCostExplorer(answers: Record<string, FakeAnswer>): Promise<FakeCostExplorer> {
  const requests: FakeCostExplorer['requests'] = [];
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => (raw += chunk.toString('utf8')));
    req.on('end', () => {
      const operation = String(req.headers['x-amz-target'] ?? '').split('.').pop() ?? '';
      requests.push({ operation, body: raw ? (JSON.parse(raw) as Record<string, unknown>) : {} });
      const answer = answers[operation] ?? { error: 'UnknownOperationException', message: `no fake answer for ${operation}` };
      const headers = { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': 'fake-request' };
      if ('error' in answer) {
        res.writeHead(answer.status ?? 400, headers).end(JSON.stringify({ __type: answer.error, Message: answer.message }));
      } else {
        res.writeHead(200, headers).end(JSON.stringify(answer.body));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A GetCostAndUsage answer grouped by service, as Cost Explorer shapes it. */
export function costAndUsage(start: string, end: string, services: Record<string, number>): unknown {
  return {
    ResultsByTime: [
      {
        TimePeriod: { Start: start, End: end },
        Total: {},
        Groups: Object.entries(services).map(([service, usd]) => ({ Keys: [service], Metrics: { UnblendedCost: { Amount: String(usd), Unit: 'USD' } } })),
        Estimated: true,
      },
    ],
    DimensionValueAttributes: [],
    GroupDefinitions: [{ Type: 'DIMENSION', Key: 'SERVICE' }],
  };
}

/** A GetCostForecast answer. */
export function costForecast(start: string, end: string, usd: number): unknown {
  return {
    Total: { Amount: String(usd), Unit: 'USD' },
    ForecastResultsByTime: [{ TimePeriod: { Start: start, End: end }, MeanValue: String(usd) }],
  };
}

import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ControlClient } from '../../../lib/gpu-control/protocol';

/**
 * The Lambda Invoke API for a gateway running as a child process (its LambdaControlClient and
 * the real AWS SDK, pointed here with AWS_ENDPOINT_URL): POST
 * /2015-03-31/functions/{FunctionName}/invocations with the event as body, answered 200 with
 * the function's result, or 200 with X-Amz-Function-Error: Unhandled and {errorType,
 * errorMessage} when it throws (AWS Lambda API Reference, "Invoke"). The function is a
 * ControlClient in this process (the real handler). It also tells the child where each box's
 * ComfyUI stand-in listens (GET /boxes/<instanceId>), for its DirectUpstream: test plumbing,
 * not part of the Lambda API.
 */
export class LambdaInvokeStandIn {
  readonly invoked: string[] = [];
  private readonly server: http.Server;

  constructor(
    private readonly functionName: string,
    control: ControlClient,
    urlOf: (instanceId: string) => string,
  ) {
    this.server = http.createServer((req, res) => {
      void (async () => {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        const path = new URL(req.url ?? '/', 'http://lambda').pathname;
        const box = /^\/boxes\/([\w-]+)$/.exec(path);
        if (box) {
          try {
            return send(res, 200, { url: urlOf(box[1]) });
          } catch (error) {
            return send(res, 404, { message: (error as Error).message });
          }
        }
        const match = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(path);
        if (req.method !== 'POST' || !match) return send(res, 404, { message: `no route ${req.method} ${path}` });
        if (decodeURIComponent(match[1]) !== this.functionName) {
          return send(res, 404, { Type: 'User', message: `Function not found: ${decodeURIComponent(match[1])}` }, { 'x-amzn-errortype': 'ResourceNotFoundException' });
        }
        const event = JSON.parse(Buffer.concat(chunks).toString() || '{}');
        this.invoked.push(event.action);
        try {
          send(res, 200, await control.call(event));
        } catch (error) {
          send(res, 200, { errorType: (error as Error).name, errorMessage: (error as Error).message }, { 'x-amz-function-error': 'Unhandled' });
        }
      })();
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

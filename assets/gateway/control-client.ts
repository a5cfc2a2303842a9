import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import type { ControlClient, ControlRequest, ControlResponse } from '../../lib/gpu-control/protocol';

/** A control call that could not be made or answered (the function's own refusals come back as ok:false). */
export class ControlUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ControlUnavailable';
  }
}

/**
 * The production control path: a synchronous Invoke of the control function (the only AWS
 * call the VPS's credential may make). Credentials and region come from the standard AWS
 * environment variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION); the event is
 * the ControlRequest and the function's result the ControlResponse.
 */
export class LambdaControlClient implements ControlClient {
  private readonly lambda: LambdaClient;

  constructor(
    private readonly functionName: string,
    lambda?: LambdaClient,
  ) {
    // A short timeout: callers poll again, and a hung call must not stall the dispatcher.
    this.lambda = lambda ?? new LambdaClient({ maxAttempts: 2, requestHandler: { requestTimeout: 15_000, connectionTimeout: 5_000 } });
  }

  async call(request: ControlRequest): Promise<ControlResponse> {
    let result;
    try {
      result = await this.lambda.send(new InvokeCommand({ FunctionName: this.functionName, Payload: Buffer.from(JSON.stringify(request)) }));
    } catch (error) {
      throw new ControlUnavailable(`invoking ${this.functionName} (${request.action}) failed: ${(error as Error).name}: ${(error as Error).message}`);
    }
    const text = result.Payload ? Buffer.from(result.Payload).toString('utf8') : '';
    if (result.FunctionError) {
      // The function threw: its payload is {errorType, errorMessage, trace}; the trace stays out of the logs.
      let detail = text.slice(0, 300);
      try {
        const parsed = JSON.parse(text) as { errorType?: string; errorMessage?: string };
        detail = `${parsed.errorType ?? 'Error'}: ${parsed.errorMessage ?? ''}`;
      } catch {
        // not JSON: the raw start is enough
      }
      throw new ControlUnavailable(`${this.functionName} failed on ${request.action} (${result.FunctionError}): ${detail}`);
    }
    try {
      const response = JSON.parse(text) as ControlResponse;
      if (typeof response?.ok !== 'boolean') throw new Error('no ok field');
      return response;
    } catch (error) {
      throw new ControlUnavailable(`${this.functionName} answered ${request.action} with something other than a ControlResponse (${(error as Error).message}): ${text.slice(0, 200)}`);
    }
  }
}

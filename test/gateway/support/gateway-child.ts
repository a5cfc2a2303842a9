import { LambdaControlClient } from '../../../assets/gateway/control-client';
import { DirectUpstream } from '../../../assets/gateway/direct-upstream';
import { startGateway } from '../../../assets/gateway/gateway-service';
import { loadSettings } from '../../../assets/gateway/settings';

/**
 * The gateway as its own process, for the restart test: main.ts's settings and control path
 * (environment variables, the Lambda client through the real SDK), with the boxes reached
 * directly (BOXES_URL/boxes/<id> says where each stand-in listens) instead of over SSH.
 * Prints "listening <url>" once it serves.
 */
async function run(): Promise<void> {
  const settings = loadSettings(process.env);
  const boxes = process.env.BOXES_URL;
  if (!settings.controlFunctionName || !boxes) throw new Error('CONTROL_FUNCTION_NAME and BOXES_URL must be set');
  const upstream = new DirectUpstream(async (instance) => {
    const answer = await fetch(`${boxes}/boxes/${instance.instanceId}`);
    if (!answer.ok) throw new Error(`no stand-in for ${instance.instanceId}`);
    return ((await answer.json()) as { url: string }).url;
  });
  const gateway = await startGateway(settings, { control: new LambdaControlClient(settings.controlFunctionName), upstream, host: '127.0.0.1' });
  console.log(`listening ${gateway.url}`);
}

run().catch((error: Error) => {
  console.error(error.stack ?? error.message);
  process.exit(1);
});

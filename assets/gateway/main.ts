import * as path from 'node:path';
import { LambdaControlClient } from './control-client';
import { startGateway, type RunningGateway } from './gateway-service';
import { SshUpstream } from './gpu-link';
import { LINK_KEY_FILE, loadOrCreateLinkKey } from './link-key';
import { handleMcpRequest, MCP_PATH } from './mcp';
import { loadSettings } from './settings';
import { WorkflowCatalog } from './workflows';

/**
 * The gateway service (docker-compose.yml `gateway`, bundled as gateway/gateway.cjs): settings
 * from the environment, the control function through Lambda, ComfyUI over the SSH link, the
 * ComfyUI API and the MCP endpoint on PORT.
 */
const REGISTER_RETRY_MS = 60_000;

const log = (line: string) => console.log(`${new Date().toISOString()} ${line}`);

async function main(): Promise<void> {
  const settings = loadSettings(process.env);
  if (!settings.controlFunctionName) throw new Error('CONTROL_FUNCTION_NAME must be set: the name of the GPU control function the gateway invokes');
  if (!settings.dataDir) throw new Error('DATA_DIR must be set: the gateway volume that keeps its SSH link key and outputs');
  const control = new LambdaControlClient(settings.controlFunctionName);
  const key = loadOrCreateLinkKey(path.join(settings.dataDir, LINK_KEY_FILE));
  const upstream = new SshUpstream({ privateKey: key.privateKey, log: (line) => log(`gpu-link: ${line}`) });
  const workflows = new WorkflowCatalog(control);
  let gateway: RunningGateway | undefined;
  gateway = await startGateway(settings, {
    control,
    upstream,
    log,
    mounts: [{ prefix: MCP_PATH, handle: (req, res) => handleMcpRequest(req, res, { api: gateway!.api, control, workflows, log }) }],
  });

  // Boxes authorize the key they find registered when they boot: register it until that works.
  const register = async (): Promise<void> => {
    try {
      const answer = await control.call({ action: 'register-link-key', publicKey: key.publicKey });
      if (!answer.ok) throw new Error(`${answer.code}: ${answer.message}`);
      log('link key registered with the control function');
    } catch (error) {
      log(`registering the link key failed (${(error as Error).message}); retrying in ${REGISTER_RETRY_MS / 1000} s`);
      setTimeout(() => void register(), REGISTER_RETRY_MS).unref();
    }
  };
  void register();

  const stop = (signal: string) => {
    log(`${signal}: stopping`);
    void gateway!.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

main().catch((error: Error) => {
  console.error(`gateway: ${error.message}`);
  process.exit(1);
});

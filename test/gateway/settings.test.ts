import { loadSettings } from '../../assets/gateway/settings';

/** The gateway's environment (docker-compose.yml): defaults, and errors that name the variable, the value and what is allowed. */
const BASE = { REDIS_URL: 'redis://default:pw@redis:6379/2', OUTPUT_LINK_SECRET: 'x'.repeat(32), DATA_DIR: '/home/node' };

test('defaults as the issue specifies; compose renders unset optional values as ""', () => {
  const s = loadSettings({ ...BASE, FALLBACK_COMFYUI_URL: '', PUBLIC_BASE_URL: '', CONTROL_FUNCTION_NAME: 'AiAssets-dev-gpu-control' });
  expect(s).toMatchObject({
    port: 9000,
    maxQueue: 100,
    holdTimeoutSeconds: 900,
    promptsPerInstance: 4,
    maxAttempts: 3,
    leaseSeconds: 180,
    leaseRenewSeconds: 60,
    metricsIntervalSeconds: 60,
    fallbackComfyuiUrl: null,
    publicBaseUrl: 'http://gateway:9000',
    outputDir: '/home/node/outputs',
    outputCacheBytes: 2000 * 1024 * 1024,
    controlFunctionName: 'AiAssets-dev-gpu-control',
  });
});

test.each([
  [{ REDIS_URL: undefined }, 'REDIS_URL must be set: the Redis URL, e.g. redis://default:PASSWORD@redis:6379/2'],
  [{ REDIS_URL: 'http://redis' }, 'REDIS_URL must start with redis:// or rediss://'],
  [{ OUTPUT_LINK_SECRET: 'short' }, 'OUTPUT_LINK_SECRET has 5 characters: allowed is at least 32'],
  [{ DATA_DIR: undefined }, 'OUTPUT_DIR (or DATA_DIR, then DATA_DIR/outputs) must be set: where finished images are kept'],
  [{ MAX_QUEUE: '0' }, 'MAX_QUEUE is "0": allowed is a whole number from 1 to 10000 (default 100)'],
  [{ HOLD_TIMEOUT_SECONDS: '1.5' }, 'HOLD_TIMEOUT_SECONDS is "1.5": allowed is a whole number from 1 to 86400 (default 900)'],
  [{ LEASE_SECONDS: '901' }, 'LEASE_SECONDS is "901": allowed is a whole number from 1 to 900 (default 180)'],
  [{ LEASE_SECONDS: '60', LEASE_RENEW_SECONDS: '60' }, 'LEASE_RENEW_SECONDS is 60: allowed is less than LEASE_SECONDS (60), or a lease lapses before it is renewed'],
  [{ FALLBACK_COMFYUI_URL: 'ftp://x' }, 'FALLBACK_COMFYUI_URL is "ftp://x": allowed is an http:// or https:// URL'],
  [{ PUBLIC_BASE_URL: 'https://u:p@x' }, 'PUBLIC_BASE_URL must not carry credentials in the URL'],
])('%j is refused: %s', (change, message) => {
  expect(() => loadSettings({ ...BASE, ...change })).toThrow(message);
});

test('the link secret is never part of an error', () => {
  expect(() => loadSettings({ ...BASE, OUTPUT_LINK_SECRET: 'secret-value' })).toThrow(/^OUTPUT_LINK_SECRET has 12 characters/);
  try {
    loadSettings({ ...BASE, OUTPUT_LINK_SECRET: 'secret-value' });
  } catch (error) {
    expect((error as Error).message).not.toContain('secret-value');
  }
});

import { GATEWAY_CREDENTIAL_VARIABLES } from './bundle';

/**
 * The gateway's AWS access key as `.env` entries, from the JSON the Gpu stack stores in its
 * credential secret ({"accessKeyId": ..., "secretAccessKey": ...}). Errors name the secret only:
 * a parse error would quote the value.
 */
export function gatewayCredentialEnv(secret: string, secretId: string): Record<(typeof GATEWAY_CREDENTIAL_VARIABLES)[number], string> {
  let parsed: { accessKeyId?: unknown; secretAccessKey?: unknown };
  try {
    parsed = JSON.parse(secret) as typeof parsed;
  } catch {
    throw new Error(`the gateway credential secret ${secretId} is not a JSON object like {"accessKeyId": "...", "secretAccessKey": "..."}`);
  }
  const { accessKeyId, secretAccessKey } = parsed ?? {};
  if (typeof accessKeyId !== 'string' || !/^[A-Z0-9]{16,128}$/.test(accessKeyId) || typeof secretAccessKey !== 'string' || !/^[A-Za-z0-9/+=]{20,128}$/.test(secretAccessKey)) {
    throw new Error(`the gateway credential secret ${secretId} lacks an accessKeyId (A-Z, 0-9) or a secretAccessKey (base64 characters): redeploy the Gpu stack, which writes it`);
  }
  return { GATEWAY_AWS_ACCESS_KEY_ID: accessKeyId, GATEWAY_AWS_SECRET_ACCESS_KEY: secretAccessKey };
}

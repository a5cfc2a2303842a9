import type { ControlInstance } from '../../lib/gpu-control/protocol';

/**
 * How the gateway reaches ComfyUI on one GPU instance. Production uses the SSH link
 * (gpu-link.ts: an encrypted forward to the box's loopback-only ComfyUI, host key checked
 * against the box's own tag); tests may reach a stand-in directly.
 */
export interface Upstream {
  /** An http://127.0.0.1:PORT base URL that reaches this instance's ComfyUI (opens the link when needed). */
  baseUrl(instance: ControlInstance): Promise<string>;
  /** Closes what was opened for instances no longer in the list. */
  retain(instanceIds: readonly string[]): void;
  close(): Promise<void>;
}

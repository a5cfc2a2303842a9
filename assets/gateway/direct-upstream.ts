import type { ControlInstance } from '../../lib/gpu-control/protocol';
import type { Upstream } from './upstream';

/**
 * An Upstream that maps an instance to a ComfyUI URL it is given (tests, the benchmark): no
 * link to open or close. Production uses the SSH link (gpu-link.ts).
 */
export class DirectUpstream implements Upstream {
  constructor(private readonly urlOf: (instance: ControlInstance) => string | Promise<string>) {}

  async baseUrl(instance: ControlInstance): Promise<string> {
    return (await this.urlOf(instance)).replace(/\/+$/, '');
  }

  retain(): void {
    // nothing is held open per instance
  }

  async close(): Promise<void> {
    // nothing to close
  }
}

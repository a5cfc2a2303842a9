import { CreateTagsCommand, DescribeSpotFleetRequestsCommand, ModifySpotFleetRequestCommand, TerminateInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { BOOT_PHASES_TAG } from '../../../lib/gpu-instance-tags';
import { fleetInstances } from '../../../lib/ops/fleet';
import { ComfyUiStandIn, type StandInOptions } from './comfyui-stand-in';

/**
 * What EC2 and the boxes do on their own, around a moto Spot Fleet: each instance the fleet
 * launches boots a ComfyUI stand-in and tags itself ready (comfyui:boot, as boot-phase.sh does);
 * a box whose instance is terminated dies; and the fleet keeps its target as a `maintain` fleet
 * does (moto launches only on ModifySpotFleetRequest, so a lost instance is replaced by writing
 * the same target again). Spot Fleet also tags its instances aws:ec2spot:fleet-request-id,
 * which idle-watcher.sh reads; moto does not, so this does.
 */
export interface FleetBoxesOptions {
  readonly bootDelayMs?: number;
  readonly standIn?: StandInOptions;
  /** Boxes stay unready until releaseBoots() (a wake that takes as long as the test needs). */
  readonly holdBoots?: boolean;
}

export interface Box {
  readonly instanceId: string;
  readonly standIn: ComfyUiStandIn;
  readonly readyAt: number;
}

export class FleetBoxes {
  readonly boxes = new Map<string, Box>();
  /** Every instance ever seen, in launch order. */
  readonly launched: string[] = [];
  private readonly booting = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private pass: Promise<void> | null = null;
  private holding: boolean;
  private stopped = false;

  constructor(
    private readonly ec2: EC2Client,
    readonly fleetId: string,
    private readonly options: FleetBoxesOptions = {},
  ) {
    this.holding = options.holdBoots ?? false;
  }

  start(intervalMs = 100): void {
    this.timer = setInterval(() => {
      this.pass ??= this.reconcile()
        .catch((error: Error) => {
          if (!this.stopped) console.error(`fleet-boxes: ${error.message}`);
        })
        .finally(() => (this.pass = null));
    }, intervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.pass;
    await Promise.all([...this.boxes.values()].map((b) => b.standIn.kill()));
    this.boxes.clear();
  }

  releaseBoots(): void {
    this.holding = false;
  }

  urlOf(instanceId: string): string {
    const box = this.boxes.get(instanceId);
    if (!box) throw new Error(`no ComfyUI stand-in runs for ${instanceId}`);
    return box.standIn.url;
  }

  /** A Spot interruption or crash: EC2 terminates the instance and its ComfyUI dies with it. */
  async kill(instanceId: string): Promise<void> {
    await this.ec2.send(new TerminateInstancesCommand({ InstanceIds: [instanceId] }));
    await this.boxes.get(instanceId)?.standIn.kill();
    this.boxes.delete(instanceId);
  }

  private async reconcile(): Promise<void> {
    const config = (await this.ec2.send(new DescribeSpotFleetRequestsCommand({ SpotFleetRequestIds: [this.fleetId] }))).SpotFleetRequestConfigs?.[0];
    const target = config?.SpotFleetRequestConfig?.TargetCapacity ?? 0;
    const instances = (await fleetInstances(this.ec2, this.fleetId)).filter((i) => i.state === 'pending' || i.state === 'running');
    if (target > instances.length) {
      await this.ec2.send(new ModifySpotFleetRequestCommand({ SpotFleetRequestId: this.fleetId, TargetCapacity: target }));
    }
    const alive = new Set(instances.map((i) => i.instanceId));
    for (const [id, box] of this.boxes) {
      if (alive.has(id)) continue;
      this.boxes.delete(id); // terminated (its idle watcher left): ComfyUI goes with it
      await box.standIn.kill();
    }
    for (const instance of instances) {
      const id = instance.instanceId;
      if (this.boxes.has(id) || this.booting.has(id) || this.holding) continue;
      this.booting.add(id);
      if (!this.launched.includes(id)) this.launched.push(id);
      void this.boot(id)
        .catch((error: Error) => {
          if (!this.stopped) console.error(`fleet-boxes: boot of ${id}: ${error.message}`);
        })
        .finally(() => this.booting.delete(id));
    }
  }

  private async boot(instanceId: string): Promise<void> {
    await this.ec2.send(new CreateTagsCommand({ Resources: [instanceId], Tags: [{ Key: 'aws:ec2spot:fleet-request-id', Value: this.fleetId }] }));
    await new Promise((r) => setTimeout(r, this.options.bootDelayMs ?? 0).unref());
    if (this.stopped) return;
    const standIn = new ComfyUiStandIn(this.options.standIn);
    await standIn.start();
    if (this.stopped) return standIn.kill();
    this.boxes.set(instanceId, { instanceId, standIn, readyAt: Date.now() });
    await this.ec2.send(new CreateTagsCommand({ Resources: [instanceId], Tags: [{ Key: BOOT_PHASES_TAG, Value: 'bootstrap=1 image=2 models=2 ready=3' }] }));
  }
}

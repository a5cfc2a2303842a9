import { isDispatchable, type FleetView } from './fleet-view';

/**
 * The gateway's side of the scale-down protocol (written out in dispatcher.ts): a lease
 * (BUSY_UNTIL_TAG through the control function) on every box it has work on, renewed
 * before it lapses, and lease-then-read before each first dispatch to a box in a tick.
 */
export class Leases {
  private readonly leasedAt = new Map<string, number>();
  /** Boxes that had work at the last renewal. */
  private hadWork = new Set<string>();

  constructor(
    private readonly fleet: FleetView,
    private readonly seconds: number,
    private readonly renewSeconds: number,
    private readonly log: (line: string) => void,
  ) {}

  /**
   * Renews the leases of boxes with work whose lease is older than the renew period, and ends
   * (shortens to 1 s) the lease of a box whose last job finished: a lease left to run out would
   * add up to LEASE_SECONDS of billed idle time to every burst (README, Cost: idle waste).
   */
  async renew(withWork: readonly string[], now = Date.now()): Promise<void> {
    // Only a box whose work finished: a box leased for a dispatch that was skipped (it was
    // leaving) keeps its lease, so its watcher sees it on the re-read and stays for the prompt.
    const finished = [...this.hadWork].filter((id) => !withWork.includes(id));
    this.hadWork = new Set(withWork);
    for (const id of this.leasedAt.keys()) if (!withWork.includes(id)) this.leasedAt.delete(id);
    if (finished.length > 0) {
      try {
        await this.fleet.call({ action: 'lease', instanceIds: finished, seconds: 1 });
      } catch (error) {
        // Gone boxes are refused too; an unended lease only lapses later.
        this.log(`ending the lease of ${finished.join(', ')} failed: ${(error as Error).message}`);
      }
    }
    const due = withWork.filter((id) => now - (this.leasedAt.get(id) ?? 0) >= this.renewSeconds * 1000);
    if (due.length === 0) return;
    try {
      await this.lease(withWork);
    } catch (error) {
      // The box may then leave under the work; resubmission covers that.
      this.log(`lease renewal for ${withWork.join(', ')} failed: ${(error as Error).message}`);
    }
  }

  /**
   * Leases `instanceId` (with the boxes that already have work), then reads the status written
   * after the lease: true only if the box is still there, ready and not leaving.
   */
  async leaseThenConfirm(instanceId: string, withWork: readonly string[]): Promise<boolean> {
    try {
      await this.lease([...new Set([instanceId, ...withWork])]);
    } catch (error) {
      this.log(`no dispatch to ${instanceId}: its lease failed: ${(error as Error).message}`);
      return false;
    }
    const instance = this.fleet.status?.instances.find((i) => i.instanceId === instanceId);
    if (!instance || !isDispatchable(instance)) {
      this.log(`no dispatch to ${instanceId}: after the lease it is ${instance ? (instance.leaving ? 'leaving' : instance.state) : 'gone'}`);
      return false;
    }
    // It gets work now: the next renewal must end this lease even if the job is already done by
    // then (a cached prompt finishes within a tick), or it would run its full length.
    this.hadWork.add(instanceId);
    return true;
  }

  private async lease(instanceIds: readonly string[]): Promise<void> {
    const at = Date.now();
    const response = await this.fleet.call({ action: 'lease', instanceIds, seconds: this.seconds });
    // The protocol needs the fleet as it is after the lease; read it if the answer had none.
    if (!response.status) await this.fleet.fresh(0);
    for (const id of instanceIds) this.leasedAt.set(id, at);
  }
}

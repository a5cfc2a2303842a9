/**
 * Billed GPU time that does no work, for a day of work that comes in bursts. With the gateway
 * waking the GPU on demand nobody keeps it warm by hand, so each burst costs one wake and one
 * idle tail:
 *  - the billed wake: Spot bills from `running`; the box is ready about 3.5 minutes later
 *    (the warm path in the README's cold-start table), while the prompts wait in the gateway;
 *  - the idle tail: gpu.idleMinutes of idle checks, plus up to one minute because the watcher
 *    checks once a minute. The gateway drops its lease when an instance's last job finishes, so
 *    the lease adds nothing; EC2 stops billing at `shutting-down` (EC2 User Guide, "Instance
 *    state changes": no usage charges once an instance is shutting down).
 * Gaps between bursts shorter than the idle tail keep the GPU up; the profile below assumes the
 * bursts are farther apart (otherwise they count as one burst).
 */
export interface BurstProfile {
  readonly workHoursPerDay: number;
  readonly burstsPerDay: number;
}

/** The seed's 8 work-hours a day, as four bursts (morning, late morning, afternoon, evening). */
export const SEED_BURST_PROFILE: BurstProfile = { workHoursPerDay: 8, burstsPerDay: 4 };

/** Fulfilment to ComfyUI ready on the warm path (README, "A GPU session, end to end"). */
export const BILLED_WAKE_MINUTES = 3.5;

/** The idle watcher runs once a minute (assets/user-data/comfyui-idle.timer). */
export const WATCHER_GRANULARITY_MINUTES = 1;

/** The waste the default gpu.idleMinutes must stay within. */
export const MAX_IDLE_WASTE = 0.08;

export interface IdleWaste {
  readonly idleMinutes: number;
  /** Billed minutes a day beyond the work. */
  readonly wasteMinutesPerDay: number;
  /** wasteMinutesPerDay / work minutes. */
  readonly ratio: number;
}

export function idleWaste(idleMinutes: number, profile: BurstProfile = SEED_BURST_PROFILE): IdleWaste {
  const perBurst = BILLED_WAKE_MINUTES + idleMinutes + WATCHER_GRANULARITY_MINUTES;
  const wasteMinutesPerDay = profile.burstsPerDay * perBurst;
  return { idleMinutes, wasteMinutesPerDay, ratio: wasteMinutesPerDay / (profile.workHoursPerDay * 60) };
}

/** The longest whole idleMinutes within [min, max] whose waste stays at or under the bound, or null. */
export function longestIdleMinutesWithin(bound: number, min: number, max: number, profile: BurstProfile = SEED_BURST_PROFILE): number | null {
  let best: number | null = null;
  for (let minutes = min; minutes <= max; minutes += 1) if (idleWaste(minutes, profile).ratio <= bound) best = minutes;
  return best;
}

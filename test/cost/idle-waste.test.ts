import { environmentSchema } from '../../lib/config/schema';
import { idleWaste, longestIdleMinutesWithin, MAX_IDLE_WASTE } from '../../lib/cost/idle-waste';

const gpuDefaults = () => environmentSchema.shape.gpu.parse({});

test('the default gpu.idleMinutes keeps billed time beyond the work at or under 8% for the seed profile', () => {
  const { idleMinutes } = gpuDefaults();
  expect(idleWaste(idleMinutes).ratio).toBeLessThanOrEqual(MAX_IDLE_WASTE);
  // It is the longest such setting: a longer tail would waste more than the bound allows.
  expect(longestIdleMinutesWithin(MAX_IDLE_WASTE, 5, 240)).toBe(idleMinutes);
});

test('the README figures: 4 bursts x (3.5 + 5 + 1) min = 38 min a day, 7.9% of 8 h; the old 15 min default wasted 16.3%', () => {
  const now = idleWaste(5);
  expect([now.wasteMinutesPerDay, Number((now.ratio * 100).toFixed(1))]).toEqual([38, 7.9]);
  const old = idleWaste(15);
  expect([old.wasteMinutesPerDay, Number((old.ratio * 100).toFixed(1))]).toEqual([78, 16.3]);
});

import { paginateDescribeSpotPriceHistory, type EC2Client } from '@aws-sdk/client-ec2';

/**
 * The Linux Spot prices (USD per hour) of `instanceType` in effect now, by availability zone
 * (only `availabilityZone` when given). Empty when the type is not offered there.
 */
export async function currentSpotPrices(ec2: EC2Client, instanceType: string, availabilityZone?: string): Promise<Map<string, number>> {
  const latest = new Map<string, { price: number; at: number }>();
  const pages = paginateDescribeSpotPriceHistory(
    { client: ec2 },
    {
      // StartTime now: EC2 returns the price in effect now (and none of the history before it).
      StartTime: new Date(),
      ProductDescriptions: ['Linux/UNIX'],
      Filters: [
        { Name: 'instance-type', Values: [instanceType] },
        ...(availabilityZone ? [{ Name: 'availability-zone', Values: [availabilityZone] }] : []),
      ],
    },
  );
  for await (const page of pages) {
    for (const p of page.SpotPriceHistory ?? []) {
      const price = Number(p.SpotPrice);
      const az = p.AvailabilityZone;
      if (p.InstanceType !== instanceType || !az || (availabilityZone && az !== availabilityZone) || !Number.isFinite(price)) continue;
      const at = p.Timestamp?.getTime() ?? 0;
      const seen = latest.get(az);
      if (!seen || at > seen.at) latest.set(az, { price, at });
    }
  }
  return new Map([...latest].map(([az, { price }]) => [az, price]));
}

/** The latest Linux Spot price (USD per hour) of `instanceType` in `availabilityZone`, or null. */
export async function latestSpotPrice(ec2: EC2Client, instanceType: string, availabilityZone: string): Promise<number | null> {
  return (await currentSpotPrices(ec2, instanceType, availabilityZone)).get(availabilityZone) ?? null;
}

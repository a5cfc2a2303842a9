import { DescribeSpotPriceHistoryCommand, type EC2Client } from '@aws-sdk/client-ec2';

/** The latest Linux Spot price (USD per hour) of `instanceType` in `availabilityZone`, or null. */
export async function latestSpotPrice(ec2: EC2Client, instanceType: string, availabilityZone: string): Promise<number | null> {
  const result = await ec2.send(
    new DescribeSpotPriceHistoryCommand({
      // StartTime now: EC2 returns the price in effect now (and none of the history before it).
      StartTime: new Date(),
      ProductDescriptions: ['Linux/UNIX'],
      Filters: [
        { Name: 'instance-type', Values: [instanceType] },
        { Name: 'availability-zone', Values: [availabilityZone] },
      ],
    }),
  );
  const matching = (result.SpotPriceHistory ?? []).filter(
    (p) => p.InstanceType === instanceType && p.AvailabilityZone === availabilityZone && p.SpotPrice !== undefined,
  );
  matching.sort((a, b) => (b.Timestamp?.getTime() ?? 0) - (a.Timestamp?.getTime() ?? 0));
  const price = Number(matching[0]?.SpotPrice);
  return Number.isFinite(price) ? price : null;
}

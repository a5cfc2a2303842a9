import type { EC2Client } from '@aws-sdk/client-ec2';
import { currentSpotPrices } from '../ops/spot-price';
import { unitPrice } from './money';
import type { Price } from './prices';

/**
 * Today's Spot prices of `instanceTypes` in the client's region, as estimate prices: the price in
 * effect now averaged over the AZs that offer the type, like the table's typical figures. An
 * operator with credentials uses them to check the dated table against the market.
 */
export async function liveSpotPrices(ec2: EC2Client, region: string, instanceTypes: readonly string[], now: Date): Promise<Record<string, Price>> {
  const result: Record<string, Price> = {};
  for (const type of instanceTypes) {
    const byAz = [...(await currentSpotPrices(ec2, type)).values()];
    if (byAz.length === 0) throw new Error(`EC2 reports no Linux Spot price for ${type} in ${region}: the type is not offered as Spot there.`);
    const average = byAz.reduce((sum, p) => sum + p, 0) / byAz.length;
    result[type] = {
      usd: average,
      per: 'instance-hour',
      source: `DescribeSpotPriceHistory in ${region} (Linux/UNIX): average of ${byAz.length} AZs, ${unitPrice(Math.min(...byAz))} to ${unitPrice(Math.max(...byAz))}`,
      asOf: now.toISOString().slice(0, 10),
      note: 'the Spot price in effect when the estimate ran, averaged over the AZs that offer the type',
    };
  }
  return result;
}

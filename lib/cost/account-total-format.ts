import { accountLabel, type AccountTotal, type SharedFreeTier } from './account-total';
import { prose, type TextOptions } from './estimate-format';
import { fitTextTable } from './fit-table';
import { dollars, quantity } from './money';
import { textTable } from './text-table';

const HEADERS = ['shared free tier', 'free', 'used', 'sum of envs', 'account'];
const RIGHT_ALIGNED = [2, 3, 4];

/** "dev", "dev and prod", "dev, staging and prod". */
function list(names: readonly string[]): string {
  return names.length <= 1 ? (names[0] ?? '') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}

function heading(a: AccountTotal): string {
  return `Account total of ${accountLabel(a.account)} (${a.environments.join(', ')}): ${dollars(a.totalUsd)}`;
}

function summary(a: AccountTotal): string {
  if (a.environments.length === 1) return `That is ${a.environments[0]}'s own total: no other environment here shares its free tiers.`;
  if (!a.freeTierApplied) return `The environments' totals added up (no free tiers applied).`;
  const more = a.sharedFreeTierUsd === 0 ? 'and the shared free tiers still cover what they use' : `and ${dollars(a.sharedFreeTierUsd)} more because each free tier counts once for the account, not once per environment`;
  return `The environments' totals add up to ${dollars(a.environmentsTotalUsd)}, ${more}. "sum of envs" adds up their lines (each with its own allowance), "account" has one allowance for all:`;
}

function rows(a: AccountTotal): string[][] {
  const amount = (t: SharedFreeTier, n: number): string => `${quantity(n)} ${t.unit}`;
  return a.sharedFreeTiers.map((t) => [t.item, amount(t, t.freeQuantity), quantity(t.usedQuantity), dollars(t.perEnvironmentUsd), dollars(t.accountUsd)]);
}

function notes(a: AccountTotal): string[] {
  const out: string[] = [];
  if (a.account === null) {
    const n = a.environments.length;
    out.push(
      `${list(a.environments)} ${n > 1 ? 'set' : 'sets'} no \`account\` in the config (the deploy credentials decide)` +
        (n > 1 ? ': counted as one account; if they deploy to different accounts, each has its own free tiers and the totals simply add up.' : '.'),
    );
  }
  if (a.environments.length > 1 && a.freeTierApplied) {
    out.push('No always-free tier is modelled for the other lines (EC2, EBS, public IPv4, S3, KMS, Secrets Manager, the VPS): they add up as they are.');
  }
  return out;
}

function hasTable(a: AccountTotal): boolean {
  return a.environments.length > 1 && a.sharedFreeTiers.length > 0;
}

/** The account totals as text, under the environments' tables. */
export function renderAccountTotals(accounts: readonly AccountTotal[], options: TextOptions = {}): string[] {
  return accounts.flatMap((a) => {
    const body = rows(a);
    const table = !hasTable(a)
      ? []
      : options.width === undefined
        ? textTable(HEADERS, body, RIGHT_ALIGNED)
        : fitTextTable(HEADERS, body, options.width, { rightAligned: RIGHT_ALIGNED }).lines;
    return ['', ...prose(heading(a), options), ...prose(summary(a), options), ...table, ...notes(a).flatMap((n) => prose(n, options))];
  });
}

/** The same as markdown. */
export function renderAccountTotalsMarkdown(accounts: readonly AccountTotal[]): string[] {
  return accounts.flatMap((a) => [
    '',
    `#### ${heading(a)}`,
    '',
    summary(a),
    ...(hasTable(a)
      ? ['', `| ${HEADERS.join(' | ')} |`, '| --- | ---: | ---: | ---: | ---: |', ...rows(a).map((r) => `| ${r.join(' | ')} |`)]
      : []),
    ...(notes(a).length > 0 ? ['', notes(a).join(' ')] : []),
  ]);
}

import * as budgets from 'aws-cdk-lib/aws-budgets';
import { Construct } from 'constructs';
import { shortHash } from './replacement-fingerprint';

export interface CostBudgetProps {
  /** Readable start of the budget's name; a hash of what replaces the budget completes it. */
  readonly budgetNamePrefix: string;
  readonly monthlyUsd: number;
  readonly alertEmail: string;
  /** Cost-allocation tag (key and value) that selects this environment's costs. */
  readonly tagKey: string;
  readonly tagValue: string;
}

/** (threshold %, actual or forecasted) pairs that e-mail the operator. */
export const BUDGET_NOTIFICATIONS = [
  { threshold: 80, type: 'ACTUAL' },
  { threshold: 100, type: 'ACTUAL' },
  { threshold: 100, type: 'FORECASTED' },
] as const;

/**
 * A monthly AWS Budgets cost budget for the environment, filtered by its
 * cost-allocation tag (activate the tag in the Billing console once; until
 * then the budget sees no costs), e-mailing at 80 % and 100 % of actual spend
 * and at 100 % of the forecast.
 *
 * CloudFormation can change NotificationsWithSubscribers only by replacing the
 * budget, and a replacement under the same BudgetName fails ("already exists").
 * The name therefore ends in a hash of the notifications (e-mail, thresholds):
 * changing them gives a new name, so the replacement is created before the old
 * budget is deleted. The limit and the filter update in place and keep the name.
 */
export class CostBudget extends Construct {
  readonly budget: budgets.CfnBudget;

  constructor(scope: Construct, id: string, props: CostBudgetProps) {
    super(scope, id);
    const notificationsWithSubscribers = BUDGET_NOTIFICATIONS.map(({ threshold, type }) => ({
      notification: { notificationType: type, comparisonOperator: 'GREATER_THAN', threshold, thresholdType: 'PERCENTAGE' },
      subscribers: [{ subscriptionType: 'EMAIL', address: props.alertEmail }],
    }));
    this.budget = new budgets.CfnBudget(this, 'Budget', {
      budget: {
        budgetName: `${props.budgetNamePrefix}-${shortHash(notificationsWithSubscribers)}`,
        budgetType: 'COST',
        timeUnit: 'MONTHLY',
        budgetLimit: { amount: props.monthlyUsd, unit: 'USD' },
        filterExpression: { tags: { key: props.tagKey, values: [props.tagValue], matchOptions: ['EQUALS'] } },
      },
      notificationsWithSubscribers,
    });
  }
}

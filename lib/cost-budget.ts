import * as budgets from 'aws-cdk-lib/aws-budgets';
import { Construct } from 'constructs';

export interface CostBudgetProps {
  readonly budgetName: string;
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
 */
export class CostBudget extends Construct {
  readonly budget: budgets.CfnBudget;

  constructor(scope: Construct, id: string, props: CostBudgetProps) {
    super(scope, id);
    this.budget = new budgets.CfnBudget(this, 'Budget', {
      budget: {
        budgetName: props.budgetName,
        budgetType: 'COST',
        timeUnit: 'MONTHLY',
        budgetLimit: { amount: props.monthlyUsd, unit: 'USD' },
        filterExpression: { tags: { key: props.tagKey, values: [props.tagValue], matchOptions: ['EQUALS'] } },
      },
      notificationsWithSubscribers: BUDGET_NOTIFICATIONS.map(({ threshold, type }) => ({
        notification: { notificationType: type, comparisonOperator: 'GREATER_THAN', threshold, thresholdType: 'PERCENTAGE' },
        subscribers: [{ subscriptionType: 'EMAIL', address: props.alertEmail }],
      })),
    });
  }
}

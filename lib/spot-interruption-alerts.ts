import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { acknowledge, wildcardActionFinding, wildcardResourceFinding } from './nag';
import { SmallFunction } from './small-function';
import type { RemovalSetting } from './removal';

/** The EventBridge detail types EC2 sends ahead of a Spot interruption. */
export const SPOT_WARNING_DETAIL_TYPES = ['EC2 Spot Instance Interruption Warning', 'EC2 Instance Rebalance Recommendation'];

export interface SpotInterruptionAlertsProps {
  readonly fleetId: string;
  readonly topic: sns.ITopic;
  readonly envName: string;
  readonly removalPolicy: RemovalSetting;
}

/**
 * Sends Spot interruption warnings and rebalance recommendations for this
 * fleet's instances to the alert topic (a rule plus a small filter function,
 * because event patterns cannot match the fleet tag).
 */
export class SpotInterruptionAlerts extends Construct {
  readonly rule: events.Rule;
  readonly filter: SmallFunction;

  constructor(scope: Construct, id: string, props: SpotInterruptionAlertsProps) {
    super(scope, id);
    this.filter = new SmallFunction(this, 'Filter', {
      code: 'spot-interruption-filter',
      description: 'Forwards Spot interruption warnings of this fleet to the alert topic',
      environment: { FLEET_ID: props.fleetId, TOPIC_ARN: props.topic.topicArn, ENV_NAME: props.envName },
      removalPolicy: props.removalPolicy,
    });
    props.topic.grantPublish(this.filter.role);
    this.filter.allow(new iam.PolicyStatement({ sid: 'ReadInstanceTags', actions: ['ec2:DescribeTags'], resources: ['*'] }));
    acknowledge(
      this.filter.role.node.findChild('DefaultPolicy'),
      { id: wildcardResourceFinding(this, '*'), reason: 'ec2:DescribeTags has no resource-level permissions; it only reads tags.' },
      {
        id: wildcardActionFinding('kms:GenerateDataKey*'),
        reason: 'Added by SNS grantPublish for the topic key only (GenerateDataKey and its WithoutPlaintext variant) on that one key.',
      },
    );

    this.rule = new events.Rule(this, 'Rule', {
      description: 'Spot interruption warnings and rebalance recommendations',
      eventPattern: { source: ['aws.ec2'], detailType: SPOT_WARNING_DETAIL_TYPES },
      targets: [new targets.LambdaFunction(this.filter.function, { retryAttempts: 2 })],
    });
  }
}

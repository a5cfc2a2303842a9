import { Duration } from 'aws-cdk-lib';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { acknowledge, wildcardActionFinding, wildcardResourceFinding } from './nag';
import { SmallFunction } from './small-function';
import { removalPolicyOf, type RemovalSetting } from './removal';

/** The EventBridge detail types EC2 sends ahead of a Spot interruption. */
export const SPOT_WARNING_DETAIL_TYPES = ['EC2 Spot Instance Interruption Warning', 'EC2 Instance Rebalance Recommendation'];

export interface SpotInterruptionAlertsProps {
  readonly fleetId: string;
  readonly topic: sns.ITopic;
  readonly envName: string;
  readonly removalPolicy: RemovalSetting;
}

/** EventBridge's tries after the first to hand an event to Lambda. */
const RETRIES = 2;
/** A warning comes 2 minutes before the interruption; EventBridge stops handing it over after this. */
const MAX_EVENT_AGE = Duration.hours(1);

/**
 * Sends Spot interruption warnings and rebalance recommendations for this
 * fleet's instances to the alert topic (a rule plus a small filter function,
 * because event patterns cannot match the fleet tag).
 *
 * Nothing is lost silently: EventBridge retries a failed delivery to the function
 * and Lambda retries a failed run (EventBridge invokes it asynchronously, so a
 * function error never reaches EventBridge); what still fails lands in one
 * encrypted dead-letter queue, and an alarm on that queue tells the alert topic.
 */
export class SpotInterruptionAlerts extends Construct {
  readonly rule: events.Rule;
  readonly filter: SmallFunction;
  readonly deadLetters: sqs.Queue;
  readonly deadLettersAlarm: cw.Alarm;

  constructor(scope: Construct, id: string, props: SpotInterruptionAlertsProps) {
    super(scope, id);
    this.deadLetters = new sqs.Queue(this, 'DeadLetters', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // The longest SQS keeps a message: time to read what was missed.
      retentionPeriod: Duration.days(14),
      removalPolicy: removalPolicyOf(props.removalPolicy),
    });
    acknowledge(this.deadLetters, {
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is itself the dead-letter queue: of the interruption rule target and of the filter function\'s asynchronous invocations.',
    });
    this.filter = new SmallFunction(this, 'Filter', {
      code: 'spot-interruption-filter',
      description: 'Forwards Spot interruption warnings of this fleet to the alert topic',
      environment: { FLEET_ID: props.fleetId, TOPIC_ARN: props.topic.topicArn, ENV_NAME: props.envName },
      removalPolicy: props.removalPolicy,
      // Lambda retries a failed run twice (its default for asynchronous invocations), then sends the
      // event here with the error in its attributes.
      deadLetterQueue: this.deadLetters,
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
      targets: [
        new targets.LambdaFunction(this.filter.function, { retryAttempts: RETRIES, maxEventAge: MAX_EVENT_AGE, deadLetterQueue: this.deadLetters }),
      ],
    });

    this.deadLettersAlarm = new cw.Alarm(this, 'DeadLettersAlarm', {
      alarmDescription:
        'A Spot interruption warning or rebalance recommendation could not be delivered to the alert topic. Read the messages in the dead-letter queue (event and error), then purge it.',
      metric: this.deadLetters.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: cw.Stats.MAXIMUM }),
      threshold: 0,
      comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cw.TreatMissingData.NOT_BREACHING,
    });
    this.deadLettersAlarm.addAlarmAction(new cwActions.SnsAction(props.topic));
  }
}

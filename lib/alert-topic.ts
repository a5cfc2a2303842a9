import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';

export interface AlertTopicProps {
  readonly alertEmail: string;
}

/**
 * The encrypted SNS topic that alarms and Spot interruption notices go to,
 * with the operator's e-mail subscribed. A customer managed key (about $1 a
 * month) because CloudWatch alarms cannot publish to a topic encrypted with
 * the AWS managed SNS key.
 *
 * The key is scheduled for deletion with its stack in every environment: it holds
 * no data (it only encrypts messages in flight through the topic), and a retained
 * key would be an orphan billing $1 a month after each teardown. (It has no alias
 * or other fixed name, so a redeploy never collides with a key still pending deletion.)
 */
export class AlertTopic extends Construct {
  readonly topic: sns.Topic;
  readonly key: kms.Key;

  constructor(scope: Construct, id: string, props: AlertTopicProps) {
    super(scope, id);
    this.key = new kms.Key(this, 'Key', {
      description: 'Encrypts the alert topic',
      enableKeyRotation: true,
      pendingWindow: Duration.days(7),
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // CloudWatch alarms publish through SNS with their own service principal; only this
    // account's alarms may use the key (confused-deputy guard, aws:SourceAccount).
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarms',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
    );
    this.topic = new sns.Topic(this, 'Topic', { masterKey: this.key, enforceSSL: true, displayName: 'GPU alerts' });
    this.topic.addSubscription(new subscriptions.EmailSubscription(props.alertEmail));
  }
}

import { CfnResource, Stack, TagManager, Tags } from 'aws-cdk-lib';

/**
 * CDK renders Tags on dashboards, but the CloudFormation schema that cfn-lint
 * validates against has no Tags there; leave them untagged rather than risk a
 * failed deploy (dashboards are priced flat, not allocated by tag anyway).
 */
const NOT_TAGGED = ['AWS::CloudWatch::Dashboard'];

/** Raw resource types that CDK's own providers create without tag support but CloudFormation can tag. */
const RAW_TAGGABLE = new Set(['AWS::IAM::Role', 'AWS::Lambda::Function']);

/**
 * Tags every resource of a stack. `Tags.of` covers L1/L2 resources; CDK's
 * built-in custom-resource providers are raw CfnResources that it skips, so
 * those get the same tags through a property override (cost allocation must
 * see every billable resource).
 */
export function tagStack(stack: Stack, tags: Record<string, string>): void {
  for (const [key, value] of Object.entries(tags)) Tags.of(stack).add(key, value, { excludeResourceTypes: NOT_TAGGED });
  const list = Object.entries(tags)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([Key, Value]) => ({ Key, Value }));
  for (const construct of stack.node.findAll()) {
    if (construct instanceof CfnResource && !TagManager.isTaggable(construct) && RAW_TAGGABLE.has(construct.cfnResourceType)) {
      construct.addPropertyOverride('Tags', list);
    }
  }
}

import { CfnResource, Lazy, Stack } from 'aws-cdk-lib';

/**
 * Drops DependsOn entries that a resource's properties already imply through
 * Ref or Fn::GetAtt. CDK's own constructs (providers, functions with an
 * explicit role, the Provider framework) emit such duplicates and cfn-lint
 * reports each as W3005. The deployment order is unchanged: CloudFormation
 * derives the same edge from the reference. Evaluated when the template is
 * rendered, after CDK has turned construct dependencies into DependsOn.
 */
export function dropRedundantDependsOn(stack: Stack): void {
  for (const construct of stack.node.findAll()) {
    if (!(construct instanceof CfnResource)) continue;
    const resource = construct;
    resource.addOverride(
      'DependsOn',
      Lazy.any(
        {
          produce: () => {
            const dependencies = resource
              .obtainDependencies()
              .filter((d): d is CfnResource => d instanceof CfnResource && Stack.of(d) === stack);
            if (dependencies.length === 0) return undefined;
            // Overrides are not inspected: a reference there keeps its DependsOn (harmless).
            const properties = JSON.stringify(stack.resolve((resource as unknown as { cfnProperties: unknown }).cfnProperties));
            const kept = dependencies
              .map((d) => stack.resolve(stack.getLogicalId(d)) as string)
              .filter((id) => !properties.includes(`{"Ref":"${id}"}`) && !properties.includes(`{"Fn::GetAtt":["${id}",`));
            return kept.length ? [...new Set(kept)].sort() : undefined;
          },
        },
        { omitEmptyArray: true },
      ),
    );
  }
}

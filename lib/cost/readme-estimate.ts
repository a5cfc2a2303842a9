import { loadEnvironment } from '../config/load';
import type { GeneratedBlock } from '../config/readme-table';
import type { CfnTemplate } from '../synth';
import { estimateEnvironment } from './estimate';
import { renderEstimateMarkdown } from './estimate-format';

/** The README's cost table: dev at the default (seed) usage profile, from dev's real templates. */
export function costEstimateBlock(devTemplates: Record<string, CfnTemplate>): GeneratedBlock {
  return {
    name: 'cost-estimate',
    render: () => renderEstimateMarkdown([estimateEnvironment(loadEnvironment('dev'), devTemplates)]).join('\n'),
  };
}

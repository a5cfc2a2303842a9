import { configTableMarkdown } from './table';

/** A README block between `<!-- NAME:start -->` and `<!-- NAME:end -->` markers, regenerated from code. */
export interface GeneratedBlock {
  readonly name: string;
  readonly render: () => string;
}

export const CONFIG_TABLE: GeneratedBlock = { name: 'config-table', render: configTableMarkdown };

/** The README with one generated block replaced by its freshly rendered content. */
export function withBlock(readme: string, block: GeneratedBlock): string {
  const start = `<!-- ${block.name}:start -->`;
  const end = `<!-- ${block.name}:end -->`;
  const from = readme.indexOf(start);
  const to = readme.indexOf(end);
  if (from < 0 || to < from) throw new Error(`README is missing the ${start} / ${end} markers`);
  return `${readme.slice(0, from + start.length)}\n${block.render()}\n${readme.slice(to)}`;
}

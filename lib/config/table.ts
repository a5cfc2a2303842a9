import { z } from 'zod';
import { environmentSchema } from './schema';

interface JsonSchemaNode {
  type?: string | string[];
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonSchemaNode>;
  required?: string[];
  items?: JsonSchemaNode;
  enum?: unknown[];
  anyOf?: JsonSchemaNode[];
  /** The rule's `allowed` sentence (see rules.ts). */
  allowed?: string;
}

const cell = (text: string): string => text.replace(/\|/g, '\\|');

/**
 * The README's table of every config field, generated from the schema so the
 * documentation cannot drift from what synth accepts.
 */
export function configTableMarkdown(): string {
  const root = z.toJSONSchema(environmentSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchemaNode;
  const rows = ['| field | type | default | allowed | meaning |', '| --- | --- | --- | --- | --- |'];
  const walk = (node: JsonSchemaNode, prefix: string) => {
    for (const [key, child] of Object.entries(node.properties ?? {})) {
      const field = `${prefix}${key}`;
      if (child.properties) {
        walk(child, `${field}.`);
        continue;
      }
      const required = node.required?.includes(key) && child.default === undefined;
      const fallback = required ? '**required**' : child.default === undefined ? '(unset)' : `\`${JSON.stringify(child.default)}\``;
      rows.push(`| \`${field}\` | ${typeOf(child)} | ${fallback} | ${cell(child.allowed ?? 'any text')} | ${cell(child.description ?? '')} |`);
    }
  };
  walk(root, '');
  return rows.join('\n');
}

function typeOf(node: JsonSchemaNode): string {
  if (node.enum) return node.enum.map((v) => `\`${String(v)}\``).join(' \\| ');
  if (node.type === 'array') return `list of ${typeOf(node.items ?? {})}`;
  if (node.anyOf) return node.anyOf.map(typeOf).join(' or ');
  return Array.isArray(node.type) ? node.type.join(' or ') : (node.type ?? 'any');
}

#!/usr/bin/env node
import * as fs from 'node:fs';
import * as path from 'node:path';
import { withConfigTable } from '../lib/config/readme-table';
import { configTableMarkdown } from '../lib/config/table';

// Prints the config reference table; with --write, refreshes it in README.md (a test keeps them equal).
if (process.argv.includes('--write')) {
  const readme = path.join(__dirname, '..', 'README.md');
  fs.writeFileSync(readme, withConfigTable(fs.readFileSync(readme, 'utf8')));
} else {
  console.log(configTableMarkdown());
}

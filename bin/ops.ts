#!/usr/bin/env node
import { runCli } from '../lib/ops/cli';

// The SDK warns on every run (when a client is created) that its future releases need Node 22,
// while the project supports Node 20 (package.json engines). An explicit setting still wins.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

// `npm run ops -- <group> <command> --env <name> ...`; see `npm run ops -- --help`.
void runCli(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});

#!/usr/bin/env node
import { addEnvironment, createApp } from '../lib/app';
import { ConfigError, loadEnvironment } from '../lib/config/load';
import { DEFAULT_ENV_VARIABLE } from '../lib/default-environment';

// `cdk <command> -c env=<name>`: one environment per invocation; $AIASSETS_ENV, then dev, when omitted.
const app = createApp();
const fromContext = app.node.tryGetContext('env') as string | undefined;
const envName = String(fromContext ?? (process.env[DEFAULT_ENV_VARIABLE] || 'dev'));
try {
  addEnvironment(app, loadEnvironment(envName, fromContext === undefined ? `${DEFAULT_ENV_VARIABLE}=${envName}` : `-c env=${envName}`));
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(1);
  }
  throw error;
}
app.synth();

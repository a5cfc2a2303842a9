#!/usr/bin/env node
import { addEnvironment, createApp } from '../lib/app';
import { ConfigError, loadEnvironment } from '../lib/config/load';

// `cdk <command> -c env=<name>`: one environment per invocation, dev when omitted.
const app = createApp();
const envName = String(app.node.tryGetContext('env') ?? 'dev');
try {
  addEnvironment(app, loadEnvironment(envName));
} catch (error) {
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(1);
  }
  throw error;
}
app.synth();

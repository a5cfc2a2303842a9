/**
 * The environment a command acts on when none is named: `-c env=<name>` for cdk, `--env <name>` for
 * the ops commands, and otherwise this variable for both, so one shell can work on one environment
 * without repeating it.
 */
export const DEFAULT_ENV_VARIABLE = 'AIASSETS_ENV';

/**
 * The run-time idle threshold ("auto-stop"): an SSM String parameter per environment that
 * `npm run ops -- gpu autostop` writes and every GPU box's idle watcher reads each minute
 * (assets/user-data/idle-watcher.sh, which repeats the bounds below in bash).
 */

type Names = { readonly appName: string; readonly envName: string };

/** The parameter's name; the box gets it as AUTO_STOP_PARAMETER in /etc/comfyui/comfyui.env. */
export function autoStopParameterName(config: Names): string {
  return `/${config.appName}/${config.envName}/gpu/auto-stop-minutes`;
}

/** The value that means "gpu.idleMinutes of the config", and the one CDK creates the parameter with. */
export const AUTO_STOP_DEFAULT = 'default';

/** Bounds of a numeric value: 1 minute to a day. */
export const AUTO_STOP_MIN_MINUTES = 1;
export const AUTO_STOP_MAX_MINUTES = 1440;

/** What the parameter may hold, for messages. */
export const AUTO_STOP_ALLOWED = `a whole number of minutes from ${AUTO_STOP_MIN_MINUTES} to ${AUTO_STOP_MAX_MINUTES}, or ${AUTO_STOP_DEFAULT} (gpu.idleMinutes)`;

/** The minutes a value sets, `default` for the config's, or null when the value is not allowed. */
export function parseAutoStopValue(raw: string): number | typeof AUTO_STOP_DEFAULT | null {
  if (raw === AUTO_STOP_DEFAULT) return AUTO_STOP_DEFAULT;
  if (!/^[0-9]{1,4}$/.test(raw)) return null;
  const minutes = Number(raw);
  return minutes >= AUTO_STOP_MIN_MINUTES && minutes <= AUTO_STOP_MAX_MINUTES ? minutes : null;
}

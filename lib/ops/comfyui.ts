/** Longest a single readiness request may take; the phase timeout bounds the whole wait. */
const REQUEST_TIMEOUT_MS = 5_000;

export interface ComfyUiProbe {
  readonly ready: boolean;
  /** `HTTP 200`, `HTTP 503`, `connection refused`, ... */
  readonly detail: string;
}

/** ComfyUI is ready when `GET <url>/system_stats` answers 200. */
export async function probeComfyUi(baseUrl: string, timeoutMs = REQUEST_TIMEOUT_MS): Promise<ComfyUiProbe> {
  const url = `${baseUrl.replace(/\/+$/, '')}/system_stats`;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(Math.max(100, timeoutMs)) });
    await response.arrayBuffer().catch(() => undefined);
    return { ready: response.status === 200, detail: `HTTP ${response.status}` };
  } catch (error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    if (cause?.code === 'ECONNREFUSED') return { ready: false, detail: 'connection refused' };
    if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
      return { ready: false, detail: 'no answer' };
    }
    return { ready: false, detail: cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error)) };
  }
}

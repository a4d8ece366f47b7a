// Waiting in tests: on a condition, not a timer. One loop for every suite.

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type Probe<T> = () => Promise<T | undefined | false> | T | undefined | false;

async function poll<T>(what: string, probe: Probe<T>, timeoutMs: number, everyMs: number, retryErrors: boolean): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      if (!retryErrors) throw err;
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
    await sleep(everyMs);
  }
}

/** Polls `probe` until it returns something other than undefined/false; an error it throws fails the wait. */
export function waitFor<T>(what: string, probe: Probe<T>, timeoutMs = 10_000, everyMs = 20): Promise<T> {
  return poll(what, probe, timeoutMs, everyMs, false);
}

/** Like waitFor, but an error the probe throws means "not yet" (a server still starting); the last one is reported on timeout. */
export function eventually<T>(what: string, probe: Probe<T>, timeoutMs = 10_000, everyMs = 20): Promise<T> {
  return poll(what, probe, timeoutMs, everyMs, true);
}

/** The REST side: the shapes the dashboard reads and one `api()` call with the token. */
import type { CheckResult, ComponentView, ProgressBody, Run as RunShape, RunTransition, UpdateAllStarted } from '../../contract/shapes.js';

// The contract's own declarations (src/contract/shapes.ts), so the server and the page cannot drift.
export type Component = ComponentView;
export type Run = RunShape;
export type { CheckResult, UpdateAllStarted };

export type Level = ProgressBody['level'];

/** A transition as the page keeps it: from REST, or first seen over the socket (no event yet). */
export interface Transition extends Omit<RunTransition, 'event' | 'level'> {
  /** `start`, `apply.done`, `recover`…; unknown (null) for a row only seen over the socket so far. */
  event: string | null;
  level: Level;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const TOKEN_KEY = 'dune-updater.token';

/** The API token, kept in this browser's localStorage (sent as a Bearer header, and `?token=` on /ws). */
export const token = {
  get(): string | null {
    try {
      return localStorage.getItem(TOKEN_KEY);
    } catch {
      return null;
    }
  },
  set(value: string | null): void {
    try {
      if (value) localStorage.setItem(TOKEN_KEY, value);
      else localStorage.removeItem(TOKEN_KEY);
    } catch {
      // storage disabled: the token lives as long as the page
    }
  },
};

export async function api<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const t = token.get();
  if (t) headers.authorization = `Bearer ${t}`;
  // No content-type without a body: Fastify refuses an empty JSON body.
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? null : JSON.stringify(body), cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'network', 'the updater cannot be reached');
  }
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: the status says enough
  }
  if (!res.ok) {
    const error = (json as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ApiError(res.status, error?.code ?? `http_${res.status}`, error?.message ?? `${res.status} ${res.statusText}`);
  }
  return json as T;
}

/**
 * The CLI's way to a running updater: its REST API at the configured address, with the token.
 * `reachable()` tells whether one answers; commands then go through it (the service owns the
 * journal and the lock), else they run in this process.
 */
import type { Config } from '../config/index.js';

export class RemoteError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class Remote {
  readonly base: string;

  constructor(private readonly config: Pick<Config, 'server'>) {
    const host = ['0.0.0.0', '::', ''].includes(config.server.host) ? '127.0.0.1' : config.server.host;
    this.base = `http://${host.includes(':') ? `[${host}]` : host}:${config.server.port}`;
  }

  async reachable(): Promise<boolean> {
    try {
      const r = await fetch(`${this.base}/healthz`, { signal: AbortSignal.timeout(1500) });
      return r.ok;
    } catch {
      return false;
    }
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.config.server.token) headers.authorization = `Bearer ${this.config.server.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const r = await fetch(`${this.base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(60_000) });
    const json = (await r.json().catch(() => null)) as { error?: { code: string; message: string } } | null;
    if (!r.ok) throw new RemoteError(r.status, json?.error?.code ?? 'http_error', json?.error?.message ?? `HTTP ${r.status}`);
    return json as T;
  }
}

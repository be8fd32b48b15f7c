/**
 * Host names and origins as HTTP carries them (`Host`, `Origin`), in one normal form, for the
 * browser checks of the server and the validation of `server.allowedHosts` / `allowedOrigins`.
 */

export interface HostName {
  /** Lower case; an IPv6 address keeps its brackets: `[::1]`. */
  name: string;
  /** Digits, or null when none was given. */
  port: string | null;
}

/** A DNS name, an IPv4 address or a bracketed IPv6 address, and an optional port. */
const HOST = /^(\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9_-]*[a-z0-9])?)*)(?::(\d{1,5}))?$/;

/** `Evil.Example:8080` → `{name: 'evil.example', port: '8080'}`; null when it is not a host. */
export function parseHost(value: string): HostName | null {
  const m = HOST.exec(value.toLowerCase());
  if (!m) return null;
  return { name: m[1]!, port: m[2] ?? null };
}

/**
 * `HTTPS://Console.Example:443` → `https://console.example` (the URL origin: lower case, default
 * port dropped); null when it is not an http(s) origin (`null`, a path, a `file:` URL).
 */
export function normalizeOrigin(value: string): string | null {
  if (!/^https?:\/\/[^/?#@\s]+\/?$/i.test(value)) return null;
  try {
    return new URL(value).origin;
  } catch {
    return null;
  }
}

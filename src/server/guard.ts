/**
 * What a browser may do (CONTRACT.md "Browsers"; docs/security.md). Before any route, every
 * request passes, in this order:
 * - Host (421 `misdirected_host`), only with no `server.token`: the `Host` header must name the
 *   loopback (`127.0.0.1`, `localhost`, `[::1]`, any port) or an entry of `server.allowedHosts`.
 *   A page under a name whose DNS answer was rebound to the device sends its own name: refused.
 * - Origin (403 `forbidden_origin`), on every mutation (any method but GET, HEAD and OPTIONS) and
 *   every WebSocket upgrade: an `Origin` header, `null` included, must be the server's own origin
 *   (`scheme://` + the request's Host, compared as URL origins: case-insensitive, default ports
 *   dropped) or an entry of `server.allowedOrigins`. No `Origin` (curl, the CLI) passes.
 * The token (401) and the body (400/415) come after, in the routes.
 */
import { normalizeOrigin, parseHost, type HostName } from '../util/hosts.js';

export interface GuardPolicy {
  /** `server.token`: with one set, the Host is not checked (the token stops a rebound page). */
  token: string | null;
  /** `host` or `host:port` (no port: any port), case-insensitive; IPv6 in brackets. */
  allowedHosts: readonly string[];
  /** `scheme://host[:port]`. */
  allowedOrigins: readonly string[];
}

export interface GuardRequest {
  method: string;
  headers: { host?: string; origin?: string; upgrade?: string };
  /** The scheme the request came in on. */
  protocol: 'http' | 'https';
}

export interface Refusal {
  status: 403 | 421;
  code: 'forbidden_origin' | 'misdirected_host';
  message: string;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const DEFAULT_PORT = { http: '80', https: '443' } as const;

/** The refusal a request gets before its route, or null when it may go on. */
export function refusal(policy: GuardPolicy, request: GuardRequest): Refusal | null {
  const hostHeader = request.headers.host;
  const host = hostHeader === undefined ? null : parseHost(hostHeader);
  if (policy.token === null && !hostAllowed(policy, host, request.protocol)) {
    return {
      status: 421,
      code: 'misdirected_host',
      message:
        hostHeader === undefined
          ? 'no Host header: with no server.token the API answers only requests addressed to the loopback or to server.allowedHosts'
          : `this updater does not answer to the host "${hostHeader.slice(0, 100)}": with no server.token it answers only 127.0.0.1, localhost, [::1] and server.allowedHosts (docs/security.md)`,
    };
  }
  const origin = request.headers.origin;
  const upgrade = request.headers.upgrade?.toLowerCase() === 'websocket';
  if (origin !== undefined && (upgrade || !SAFE_METHODS.has(request.method)) && !originAllowed(policy, origin, host, request.protocol)) {
    return {
      status: 403,
      code: 'forbidden_origin',
      message: `requests from the origin "${origin.slice(0, 100)}" are refused: only this updater's own pages and server.allowedOrigins may ${upgrade ? 'open /ws' : 'change anything'} (docs/security.md)`,
    };
  }
  return null;
}

function hostAllowed(policy: GuardPolicy, host: HostName | null, protocol: 'http' | 'https'): boolean {
  if (host === null) return false;
  if (LOOPBACK.has(host.name)) return true;
  const port = host.port ?? DEFAULT_PORT[protocol];
  return policy.allowedHosts.some((entry) => {
    const allowed = parseHost(entry);
    return allowed !== null && allowed.name === host.name && (allowed.port === null || allowed.port === port);
  });
}

function originAllowed(policy: GuardPolicy, origin: string, host: HostName | null, protocol: 'http' | 'https'): boolean {
  const presented = normalizeOrigin(origin);
  if (presented === null) return false; // `null`, and anything else that is not an http(s) origin
  if (host !== null && presented === normalizeOrigin(`${protocol}://${host.name}${host.port === null ? '' : `:${host.port}`}`)) return true;
  return policy.allowedOrigins.some((entry) => normalizeOrigin(entry) === presented);
}

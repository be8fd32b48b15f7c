/**
 * The API token: with `server.token` set, every mutation and `/ws` need it, as
 * `Authorization: Bearer <token>` or (browsers cannot set headers on a WebSocket) `?token=`.
 * Compared in constant time (over SHA-256 digests, so lengths leak nothing either).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';

const digest = (s: string) => createHash('sha256').update(s).digest();

export function tokenMatches(expected: string | null, presented: string | undefined): boolean {
  if (expected === null) return true;
  if (presented === undefined) return false;
  return timingSafeEqual(digest(expected), digest(presented));
}

/** The token a request presents: the Bearer header first, else the `token` query parameter. */
export function presentedToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header === 'string') {
    const m = /^Bearer\s+(.+)$/i.exec(header.trim());
    if (m) return m[1];
  }
  const query = request.query as Record<string, unknown> | undefined;
  return typeof query?.token === 'string' ? query.token : undefined;
}

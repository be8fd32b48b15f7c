/**
 * The updater's own client access URL for an Azure Web PubSub hub, signed from the connection
 * string as Azure's server SDKs sign one: a JWT, HS256 with the AccessKey (its UTF-8 bytes),
 * `aud` `<Endpoint>/client/hubs/<hub>`, `sub` the user id, `role` the group's join/leave and
 * send rights only, `exp` an hour ahead at most. A new one for every new connection: the client
 * library asks for it through `getClientAccessUrl`. jose signs it (no hand-made JWT).
 */
import { SignJWT } from 'jose';
import type { ConnectionString } from '../util/connection-string.js';

/** How long a signed token is valid (the contract allows an hour at most). */
export const TOKEN_LIFETIME_SECONDS = 60 * 60;

export interface ClientUrlRequest {
  connection: ConnectionString;
  hub: string;
  group: string;
  userId: string;
  /** Seconds since the epoch (tests); default now. */
  now?: number;
}

/** The roles the updater needs in its group, and no others. */
export const rolesFor = (group: string): string[] => [`webpubsub.joinLeaveGroup.${group}`, `webpubsub.sendToGroup.${group}`];

export async function signClientUrl(r: ClientUrlRequest): Promise<string> {
  const audience = `${r.connection.endpoint}/client/hubs/${r.hub}`;
  const now = r.now ?? Math.floor(Date.now() / 1000);
  const token = await new SignJWT({ role: rolesFor(r.group) })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setAudience(audience)
    .setSubject(r.userId)
    .setIssuedAt(now)
    .setExpirationTime(now + TOKEN_LIFETIME_SECONDS)
    .sign(new TextEncoder().encode(r.connection.accessKey));
  const socket = r.connection.endpoint.replace(/^http/, 'ws');
  return `${socket}/client/hubs/${encodeURIComponent(r.hub)}?access_token=${token}`;
}

/**
 * A text with whatever might be a secret taken out: an access token in a URL, a JWT, an AccessKey.
 * For every message of the client library that reaches a log line or an answer.
 */
export function redact(text: string): string {
  return text
    .replace(/(access_token|awps_reconnection_token)=[^&\s"']+/gi, '$1=[redacted]')
    .replace(/AccessKey=[^;\s"']+/gi, 'AccessKey=[redacted]')
    .replace(/eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+/g, '[redacted JWT]');
}

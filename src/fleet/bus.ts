/**
 * The console's NATS: the connection (servers, and a .creds file, user/password or a token, as
 * NATS users know them), and the two JetStream KV buckets of the fleet (created when missing).
 * Every failure to get there is a `FleetError` with a sentence for people.
 */
import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, type ConnectionOptions, type KV, type NatsConnection } from 'nats';
import { DEVICES_BUCKET, ROLLOUTS_BUCKET } from '../contract/fleet.js';

export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';

/** A problem the console explains in one sentence (no stack trace): `exit` is the CLI's exit code. */
export class FleetError extends Error {
  constructor(
    message: string,
    readonly exit: number,
  ) {
    super(message);
    this.name = 'FleetError';
  }
}

export interface BusOptions {
  /** One URL, or several separated by commas (the servers of a cluster). */
  servers: string;
  creds?: string | undefined;
  user?: string | undefined;
  password?: string | undefined;
  token?: string | undefined;
  /** Replicas of a bucket the console creates (an existing bucket keeps its own). */
  replicas?: number;
}

/** The options from the command line, else the environment (UPDATER_NATS_URL, _CREDS, _USER, _PASSWORD, _TOKEN). */
export function busOptions(values: { nats?: string | undefined; creds?: string | undefined; user?: string | undefined; password?: string | undefined; token?: string | undefined }, env: NodeJS.ProcessEnv): BusOptions {
  return {
    servers: values.nats ?? env.UPDATER_NATS_URL ?? DEFAULT_NATS_URL,
    creds: values.creds ?? env.UPDATER_NATS_CREDS,
    user: values.user ?? env.UPDATER_NATS_USER,
    password: values.password ?? env.UPDATER_NATS_PASSWORD,
    token: values.token ?? env.UPDATER_NATS_TOKEN,
    replicas: env.UPDATER_NATS_KV_REPLICAS ? Number(env.UPDATER_NATS_KV_REPLICAS) : 1,
  };
}

export interface Bus {
  nc: NatsConnection;
  devices: KV;
  rollouts: KV;
  servers: string;
  close(): Promise<void>;
}

const FAILURE = 3;

export function connectionOptions(options: BusOptions): ConnectionOptions {
  const servers = options.servers
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (servers.length === 0) throw new FleetError('--nats: no server URL given', 2);
  const connection: ConnectionOptions = {
    servers,
    name: 'updater fleet console',
    timeout: 5000,
    // During a rollout the bus may blink: keep reconnecting (requests meanwhile time out and are asked again).
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
  };
  if (options.creds) {
    let creds: Uint8Array;
    try {
      creds = readFileSync(options.creds);
    } catch (error) {
      throw new FleetError(`cannot read the NATS credentials file ${options.creds}: ${(error as Error).message}`, 2);
    }
    connection.authenticator = credsAuthenticator(creds);
  }
  if (options.user !== undefined) {
    connection.user = options.user;
    if (options.password !== undefined) connection.pass = options.password;
  }
  if (options.token !== undefined) connection.token = options.token;
  return connection;
}

/** Connects and opens (or creates) both buckets. */
export async function openBus(options: BusOptions): Promise<Bus> {
  const connection = connectionOptions(options);
  const where = (connection.servers as string[]).join(', ');
  let nc: NatsConnection;
  try {
    nc = await connect(connection);
  } catch (error) {
    throw new FleetError(`cannot connect to NATS at ${where}: ${describe(error)}`, FAILURE);
  }
  try {
    const js = nc.jetstream();
    const replicas = Number.isInteger(options.replicas) && options.replicas! > 0 ? options.replicas! : 1;
    const devices = await js.views.kv(DEVICES_BUCKET, { history: 1, replicas });
    const rollouts = await js.views.kv(ROLLOUTS_BUCKET, { history: 5, replicas });
    return { nc, devices, rollouts, servers: where, close: () => nc.drain().catch(() => nc.close()) };
  } catch (error) {
    await nc.close().catch(() => {});
    throw new FleetError(`NATS at ${where} answers, but its JetStream key-value buckets cannot be opened (${DEVICES_BUCKET}, ${ROLLOUTS_BUCKET}): ${describe(error)}; is JetStream enabled (nats-server -js, or jetstream {} in its configuration)?`, FAILURE);
  }
}

/** What a NATS error means, in words. */
export function describe(error: unknown): string {
  const e = (error ?? {}) as { code?: unknown; message?: unknown };
  switch (e.code) {
    case 'CONNECTION_REFUSED':
      return 'connection refused (is nats-server running there?)';
    case 'AUTHORIZATION_VIOLATION':
      return 'authorization violation (check --creds, --user/--password or --token)';
    case 'AUTHENTICATION_EXPIRED':
      return 'the credentials have expired';
    case 'CONNECTION_TIMEOUT':
    case 'TIMEOUT':
      return 'no answer in time';
    case '503':
      return 'no responders';
    default:
      return typeof e.message === 'string' && e.message ? e.message : String(error);
  }
}

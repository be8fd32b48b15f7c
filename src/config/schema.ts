import { z } from 'zod';
import type { Component } from '../core/component.js';
import { normalizeOrigin, parseHost } from '../util/hosts.js';
import { parseConnectionString } from '../util/connection-string.js';
import { DEVICE_NAME_PATTERN } from '../contract/fleet.js';
import type { ComponentConfig } from '../kinds/index.js';

/**
 * The configuration model (CONTRACT.md, "Configuration").
 *
 * The zod schema validates what a user wrote (after the ini import and the environment
 * overrides are merged in) and fills the plain defaults. Defaults that depend on other keys
 * (`backupDir` from `dataDir`, an app's `asset` from its `repo`) and relative paths are settled
 * afterwards by `loadConfig` (and each kind's `resolve`), so the schema stays free of transforms
 * and converts to JSON Schema. Every object is strict: an unknown key is an error, so a typo never
 * passes silently.
 *
 * This file knows no kind: `components[]` is the union of the schemas of the kinds the loader is
 * given (src/kinds/index.ts is the registry), built by `configSchemaFor`. The pieces every kind
 * shares (`componentFields`, `healthSchema`, `nonEmpty`) are exported for the kinds' schemas.
 */

export const COMPONENT_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
/** GitHub `owner/name`: the owner is letters, digits and dashes; the name also takes `.` and `_`. */
export const REPO_PATTERN = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\/(?!\.\.?$)[A-Za-z0-9._-]{1,100}$/;
export const GITHUB_ACCOUNT_PATTERN = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;

export const nonEmpty = (what = 'a string') =>
  z.string().min(1, { error: `must not be empty (expected ${what})` });

const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' });

/** A token: a non-empty string, or null for none. */
const token = z
  .string({ error: (iss) => (iss.input === undefined ? undefined : `expected a string or null, got ${describeValue(iss.input)}`) })
  .min(1, { error: 'must not be empty (use null for no token)' })
  .nullable();

export const healthSchema = z
  .strictObject({
    url: httpUrl.meta({ description: 'Answers 200 when the component is healthy; a `version` in a JSON body must equal the target.' }),
    timeoutSeconds: z
      .number()
      .positive({ error: 'expected a number > 0' })
      .default(60)
      .meta({ description: 'How long verify waits for the health URL.' }),
  })
  .meta({ description: 'Health check run by verify.' });

/**
 * Words that clients send in place of a component name to mean every component (`updater.update
 * "all"`, the frontend's `"manual_confirmation"`): no component may be called so.
 */
export const RESERVED_COMPONENT_NAMES: readonly string[] = ['all', 'manual_confirmation'];

const componentName = z
  .string()
  .regex(COMPONENT_NAME_PATTERN, {
    error: 'must be 1 to 63 characters of a-z, 0-9, "-" or "_", starting with a letter or digit',
  })
  .refine((name) => !RESERVED_COMPONENT_NAMES.includes(name), {
    error: (iss) => `"${String(iss.input)}" is reserved (clients send it to mean every component); choose another name`,
  })
  .meta({ description: 'Unique; used in file names, URLs and messages. `all` and `manual_confirmation` are reserved.' });

const repo = z
  .string()
  .regex(REPO_PATTERN, { error: 'must look like owner/name' })
  .meta({ description: 'GitHub repository, `owner/name`.' });

const updateFirst = z
  .boolean()
  .default(false)
  .meta({
    description:
      'Update this component before the others: while it has an update available, updating another component on its own is refused (409 `update_first`; dry runs and rollbacks are not), and an update of all components installs the `updateFirst` ones first, in config order. See docs/configuration.md.',
  });

/** The keys every kind's component has (see `Component`); a kind's schema spreads them into its own. */
export const componentFields = { name: componentName, repo, updateFirst };

/** A kind's schema, as the registry holds it: a strict object whose `kind` is a literal. */
export type KindSchema = z.ZodObject<{ kind: z.ZodLiteral<string> } & z.core.$ZodLooseShape, z.core.$strict>;

export const serverSchema = z.strictObject({
  host: nonEmpty('a host name or address').default('127.0.0.1').meta({ description: 'Address the API listens on. Without a token keep it on loopback.' }),
  port: z
    .number()
    .int({ error: portError })
    .min(0, { error: portError })
    .max(65535, { error: portError })
    .default(8080)
    .meta({ description: 'Port of the API, the dashboard and /ws (0 picks a free one).' }),
  token: token.default(null).meta({ description: 'When set, required on REST mutations and /ws.' }),
  allowedHosts: z
    .array(
      z.string().refine((v) => parseHost(v) !== null, {
        error: (iss) => `expected a host name or address with an optional port (dunebugger.local, 192.168.1.20:8080, [fe80::1]), got ${describeValue(iss.input)}`,
      }),
      { error: (iss) => (iss.input === undefined ? undefined : `expected a list of host names, got ${describeValue(iss.input)}`) },
    )
    .default([])
    .meta({
      description:
        'With no token, the names a request may address in its Host header besides the loopback (127.0.0.1, localhost, [::1]) and `server.host`; any other gets 421 (DNS rebinding). `host` (any port) or `host:port`. See docs/security.md.',
    }),
  allowedOrigins: z
    .array(
      z.string().refine((v) => normalizeOrigin(v) !== null, {
        error: (iss) => `expected an origin, scheme://host[:port] with no path (https://console.example), got ${describeValue(iss.input)}`,
      }),
      { error: (iss) => (iss.input === undefined ? undefined : `expected a list of origins, got ${describeValue(iss.input)}`) },
    )
    .default([])
    .meta({
      description:
        'Web origins besides the updater\'s own pages that may send mutations and open /ws (an `Origin` header of any other site gets 403), e.g. `https://console.example`. See docs/security.md.',
    }),
});

export const githubSchema = z.strictObject({
  apiUrl: httpUrl.default('https://api.github.com').meta({ description: 'GitHub REST API (releases).' }),
  rawUrl: httpUrl.default('https://raw.githubusercontent.com').meta({ description: 'Where `update-manifest.yaml` is read from: `{rawUrl}/{repo}/{tag}/`.' }),
  token: token.default(null).meta({ description: 'GitHub token for the API (rate limits, private repos).' }),
});

/** Never echoes its value: a connection string holds the AccessKey, a client URL its token. */
const secret = (what: string) => z.string({ error: `expected a string (${what})` }).min(1, { error: `must not be empty (expected ${what})` });

export const webpubsubSchema = z
  .strictObject({
    url: secret('a client access URL')
      .refine((v) => /^wss?:\/\/[^/?#\s]+\/client\/hubs\/[^/?#\s]+\?(?:.*&)?access_token=[^&\s]+/.test(v), {
        error: 'must be a client access URL, wss://NAME.webpubsub.azure.com/client/hubs/HUB?access_token=JWT',
      })
      .optional()
      .meta({ description: 'A client access URL with its token (for a token that does not expire). Prefer `connectionString`.' }),
    connectionString: secret('a connection string')
      .superRefine((v, ctx) => {
        const parsed = parseConnectionString(v);
        if ('problem' in parsed) ctx.addIssue({ code: 'custom', message: parsed.problem, input: '' });
      })
      .optional()
      .meta({ description: 'The hub\'s connection string, `Endpoint=https://NAME.webpubsub.azure.com;AccessKey=KEY;Version=1.0;`: the updater signs its own client token with it, a fresh one for each connection. A secret: never logged.' }),
    hub: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9_]{0,127}$/, { error: 'must be a hub name: a letter, then letters, digits or "_"' })
      .optional()
      .meta({ description: 'The hub, with `connectionString` (the frontend\'s is `dunebugger`).' }),
    group: nonEmpty('a group name')
      .max(1024, { error: 'must be at most 1024 characters' })
      .meta({ description: 'The device\'s name: the group the frontend joins to reach this device.' }),
    userId: nonEmpty('a user id').max(1024, { error: 'must be at most 1024 characters' }).optional().meta({ description: 'The updater\'s user id in the hub (default: the group).' }),
    controller: z
      .boolean()
      .default(true)
      .meta({ description: 'Also answer `controller.heartbeat` and `controller.system_info`; false where dunebugger-remote still answers those.' }),
  })
  .superRefine((v, ctx) => {
    if ((v.url === undefined) === (v.connectionString === undefined)) ctx.addIssue({ code: 'custom', message: 'set exactly one of url and connectionString', path: [], input: '' });
    if (v.connectionString !== undefined && v.hub === undefined) ctx.addIssue({ code: 'custom', message: 'is required with connectionString', path: ['hub'], input: '' });
    if (v.url !== undefined && v.hub !== undefined) ctx.addIssue({ code: 'custom', message: 'goes with connectionString; a url already names its hub', path: ['hub'], input: '' });
  })
  .meta({ description: 'The DuneBugger web frontend, through an Azure Web PubSub hub (docs/frontend.md); absent: off.' });

const natsUrl = z.string({ error: 'expected a nats:// or tls:// URL' }).refine((v) => /^(nats|tls):\/\/[^\s/?#]+\/?$/.test(v), {
  error: (iss) => `expected a nats:// or tls:// URL (nats://host:4222), got ${describeValue(redactUrl(iss.input))}`,
});

/** A server URL as it may be shown: a `user:password@` in it is never echoed. */
function redactUrl(value: unknown): unknown {
  return typeof value === 'string' ? value.replace(/\/\/[^@/\s]*@/, '//[redacted]@') : value;
}

export const natsSchema = z
  .strictObject({
    servers: z
      .array(natsUrl, { error: (iss) => (iss.input === undefined ? undefined : 'expected a list of nats:// or tls:// URLs, e.g. [nats://127.0.0.1:4222]') })
      .min(1, { error: 'must list at least one server' })
      .meta({ description: 'The NATS servers (`nats://host:4222`, `tls://host:4222`); the client picks one and moves to another when it goes away.' }),
    device: z
      .string({ error: (iss) => (iss.input === undefined ? undefined : 'expected a device name') })
      .regex(DEVICE_NAME_PATTERN, { error: 'must be a device name: 1 to 64 characters of letters, digits, "-" or "_" (it is a subject token and a KV key)' })
      .meta({ description: 'This device\'s name on the bus: it answers on `dune.<device>.…` and writes its record under this key of `dune_devices`.' }),
    credentials: nonEmpty('a path')
      .nullable()
      .optional()
      .meta({ description: 'A NATS credentials file (`.creds`: a user JWT and its NKey seed), as `nsc` writes it. Its content is never logged.' }),
    user: nonEmpty('a user name').optional().meta({ description: 'A user name, with `password`.' }),
    password: secret('a password').optional().meta({ description: 'The password of `user`. A secret: never logged.' }),
    token: secret('a token').optional().meta({ description: 'An authentication token. A secret: never logged.' }),
    tls: z
      .strictObject({
        ca: nonEmpty('a path').optional().meta({ description: 'A PEM file of the CA that signed the servers\' certificates (default: the system\'s).' }),
        cert: nonEmpty('a path').optional().meta({ description: 'This device\'s client certificate (PEM), with `key`.' }),
        key: nonEmpty('a path').optional().meta({ description: 'The private key of `cert` (PEM).' }),
      })
      .superRefine((v, ctx) => {
        if ((v.cert === undefined) !== (v.key === undefined)) ctx.addIssue({ code: 'custom', message: 'set cert and key together', path: [], input: '' });
      })
      .optional()
      .meta({ description: 'TLS to the servers (any `tls://` server, or a server that requires it).' }),
  })
  .superRefine((v, ctx) => {
    const ways = [v.credentials != null && 'credentials', (v.user !== undefined || v.password !== undefined) && 'user/password', v.token !== undefined && 'token'].filter((w) => w !== false);
    if (ways.length > 1) ctx.addIssue({ code: 'custom', message: `set one way to authenticate, not ${ways.join(' and ')}: credentials, or user and password, or token`, path: [], input: '' });
    if (v.user !== undefined && v.password === undefined) ctx.addIssue({ code: 'custom', message: 'is required with user', path: ['password'], input: '' });
    if (v.password !== undefined && v.user === undefined) ctx.addIssue({ code: 'custom', message: 'is required with password', path: ['user'], input: '' });
  })
  .meta({ description: 'The NATS bus: the device answers requests and publishes its events and status there, for the fleet console (docs/fleet.md); absent: off.' });

export const manifestSchema = z
  .strictObject({
    remoteComponent: z
      .string()
      .regex(COMPONENT_NAME_PATTERN, { error: 'must be a component name: 1 to 63 characters of a-z, 0-9, "-" or "_", starting with a letter or digit' })
      .default('remote')
      .meta({
        description:
          'The component whose installed version a release\'s `min_remote_version` is compared with. When set, it must name a configured component; with the default, and no component of that name, the updater\'s own version is compared instead. See docs/releases.md.',
      }),
  })
  .meta({ description: 'How a release\'s `update-manifest.yaml` is read.' });

const configShape = {
  server: serverSchema.prefault({}).meta({ description: 'The HTTP API and WebSocket.' }),
  dataDir: nonEmpty('a path').default('./data').meta({ description: 'updater.db (the journal) and logs/updates.log (one line per finished run) live here.' }),
  backupDir: nonEmpty('a path').optional().meta({ description: 'Default `<dataDir>/backups`.' }),
  backupRetention: z
    .number()
    .int({ error: 'expected an integer >= 1' })
    .min(1, { error: 'expected an integer >= 1' })
    .default(3)
    .meta({ description: 'Newest N backups kept per component.' }),
  checkIntervalHours: z
    .number()
    .min(0, { error: 'expected a number >= 0' })
    .default(24)
    .meta({ description: 'Hours between scheduled checks; 0 disables the scheduler.' }),
  includePrerelease: z.boolean().default(false).meta({ description: 'Offer prereleases (`-beta`, GitHub prerelease flag) as updates.' }),
  github: githubSchema.prefault({}).meta({ description: 'Where releases come from.' }),
  manifest: manifestSchema.prefault({}),
  webpubsub: webpubsubSchema.optional(),
  nats: natsSchema.optional(),
};

/**
 * The whole configuration's schema for the given kinds' component schemas: `components[]` is their
 * union by `kind`, so an unknown kind is refused naming the known ones.
 */
export function configSchemaFor(componentSchemas: readonly KindSchema[]) {
  if (componentSchemas.length === 0) throw new Error('the configuration needs at least one component kind');
  const union = z.discriminatedUnion('kind', componentSchemas as unknown as [KindSchema, ...KindSchema[]]);
  return z
    .strictObject({
      ...configShape,
      components: z.array(union).default([]).meta({ description: 'What the updater keeps current; none: the embedded demo runs.' }),
    })
    .meta({ title: 'dune-updater configuration' });
}

export type ConfigSchema = ReturnType<typeof configSchemaFor>;

function portError(iss: { input?: unknown }): string {
  return `expected an integer between 0 and 65535, got ${describeValue(iss.input)}`;
}

export interface ServerConfig {
  host: string;
  port: number;
  token: string | null;
  /** Host names (and `host:port`) a request may address besides the loopback, when there is no token. */
  allowedHosts: string[];
  /** Origins (`scheme://host[:port]`) that may mutate and open /ws besides the updater's own. */
  allowedOrigins: string[];
}

export interface GithubConfig {
  /** Without a trailing slash. */
  apiUrl: string;
  /** Without a trailing slash. */
  rawUrl: string;
  token: string | null;
}

export interface WebPubSubConfig {
  url?: string | undefined;
  connectionString?: string | undefined;
  hub?: string | undefined;
  group: string;
  userId?: string | undefined;
  controller: boolean;
}

export interface NatsConfig {
  servers: string[];
  device: string;
  /** Paths are absolute once loaded. */
  credentials?: string | null | undefined;
  user?: string | undefined;
  password?: string | undefined;
  token?: string | undefined;
  tls?: { ca?: string | undefined; cert?: string | undefined; key?: string | undefined } | undefined;
}

export interface ManifestConfig {
  /** The component a manifest's `min_remote_version` is compared with (default `remote`). */
  remoteComponent: string;
}

export interface HealthConfig {
  url: string;
  timeoutSeconds: number;
}

/** The validated configuration: defaults filled, paths absolute; `C` the components of the kinds it was loaded with. */
export interface Config<C extends Component = ComponentConfig> {
  server: ServerConfig;
  /** Absolute. */
  dataDir: string;
  /** Absolute. */
  backupDir: string;
  backupRetention: number;
  checkIntervalHours: number;
  includePrerelease: boolean;
  github: GithubConfig;
  manifest: ManifestConfig;
  /** Absent: no Web PubSub transport. */
  webpubsub?: WebPubSubConfig | undefined;
  /** Absent: no NATS transport. */
  nats?: NatsConfig | undefined;
  components: C[];
}

/** The schema's own output, before derived defaults and path resolution. */
export type ParsedConfig = z.output<ConfigSchema>;

/** What a user may write (every key with a default is optional). */
export type ConfigInput = z.input<ConfigSchema>;

// Compile-time guard: the hand-written types stay in step with the schema.
type Assert<T extends true> = T;
export type _SchemaMatchesTypes = Assert<
  z.output<typeof healthSchema> extends HealthConfig
    ? Omit<ParsedConfig, 'backupDir' | 'components'> extends Omit<Config, 'backupDir' | 'components'>
      ? true
      : false
    : false
>;

/**
 * Messages for zod's issues, in the project's voice: short, human, about the value the user
 * wrote. Checks with their own `error` above take precedence over this map.
 */
export function issueMessage(iss: z.core.$ZodRawIssue): string | undefined {
  const input: unknown = iss.input;
  switch (iss.code) {
    case 'invalid_type':
      if (input === undefined) return 'required';
      return `expected ${typeName(String(iss.expected))}, got ${describeValue(input)}`;
    case 'too_small':
      if (iss.origin === 'number') return `expected a number ${iss.inclusive === false ? '>' : '>='} ${String(iss.minimum)}`;
      if (iss.origin === 'string') return 'must not be empty';
      if (iss.origin === 'array') return `must have at least ${String(iss.minimum)} item(s)`;
      return undefined;
    case 'too_big':
      if (iss.origin === 'number') return `expected a number ${iss.inclusive === false ? '<' : '<='} ${String(iss.maximum)}`;
      return undefined;
    case 'invalid_value':
      return `must be one of ${iss.values.map(String).join(', ')}`;
    case 'invalid_format':
      return `is not a valid ${iss.format}`;
    default:
      return undefined;
  }
}

function typeName(expected: string): string {
  switch (expected) {
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    case 'int':
      return 'an integer';
    case 'boolean':
      return 'true or false';
    case 'object':
      return 'a mapping';
    case 'array':
      return 'a list';
    default:
      return expected;
  }
}

/** A value as a user would recognise it in a message: `"abc"`, `12`, `null`, `a list`. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return typeof value;
}

/** Keys of the top level and of `server` / `github`, for matching environment variables. */
export const TOP_LEVEL_KEYS: string[] = [...Object.keys(configShape), 'components'];
export const NESTED_KEYS: Record<string, string[]> = {
  server: Object.keys(serverSchema.shape),
  github: Object.keys(githubSchema.shape),
  manifest: Object.keys(manifestSchema.shape),
  webpubsub: ['url', 'connectionString', 'hub', 'group', 'userId', 'controller'],
  nats: ['servers', 'device', 'credentials', 'user', 'password', 'token', 'tls'],
};

/** Keys whose value is a plain string (environment values for them are never re-typed by YAML). */
export const STRING_KEYS = new Set([
  'dataDir',
  'backupDir',
  'server.host',
  'server.token',
  'github.apiUrl',
  'github.rawUrl',
  'github.token',
  'manifest.remoteComponent',
  'webpubsub.url',
  'webpubsub.connectionString',
  'webpubsub.hub',
  'webpubsub.group',
  'webpubsub.userId',
  'nats.device',
  'nats.credentials',
  'nats.user',
  'nats.password',
  'nats.token',
]);

/**
 * The keys allowed in the object at `path` of the raw input (for "did you mean" hints), or
 * undefined when unknown. Follows `schema` along the path; at a union by a key (a component's
 * `kind`, a service's `manager`), the member the raw input names.
 */
export function knownKeysAt(schema: z.ZodType, path: readonly PropertyKey[], raw: unknown): string[] | undefined {
  const node = schemaAt(schema, path, raw);
  return node && isObjectSchema(node) ? Object.keys(node._zod.def.shape) : undefined;
}

/**
 * When `path` names a key missing from a member of a union by a key (`kind`, `manager`), unless
 * every member has that very key: the union's key and the member's value, for "required for kind
 * container".
 */
export function requiredBy(schema: z.ZodType, path: readonly PropertyKey[], raw: unknown): { key: string; value: string } | undefined {
  const key = path.at(-1);
  const parentPath = path.slice(0, -1);
  const union = schemaAt(schema, parentPath, raw, { stopAtUnion: true });
  if (!union || !isDiscriminated(union) || typeof key !== 'string') return undefined;
  const discriminator = union._zod.def.discriminator;
  const value = (valueAt(raw, parentPath) as Record<string, unknown> | undefined)?.[discriminator];
  if (key === discriminator || typeof value !== 'string') return undefined;
  // A key every member shares (the same schema: `name`, `repo` of every kind) is just "required".
  const options = union._zod.def.options.filter(isObjectSchema);
  const first = options[0]?._zod.def.shape[key];
  if (first && options.every((o) => o._zod.def.shape[key] === first)) return undefined;
  return { key: discriminator, value };
}

type AnySchema = z.core.$ZodType;
type ObjectSchema = z.core.$ZodObject;
type DiscriminatedSchema = z.core.$ZodDiscriminatedUnion;

const isObjectSchema = (s: AnySchema): s is ObjectSchema => s._zod.def.type === 'object';
const isDiscriminated = (s: AnySchema): s is DiscriminatedSchema =>
  s._zod.def.type === 'union' && typeof (s as DiscriminatedSchema)._zod.def.discriminator === 'string';

function unwrap(s: AnySchema): AnySchema {
  let node = s;
  for (;;) {
    const def = node._zod.def as { type: string; innerType?: AnySchema };
    if (['optional', 'nullable', 'default', 'prefault'].includes(def.type) && def.innerType) node = def.innerType;
    else return node;
  }
}

/** The member of a union by a key that `value` names, or undefined. */
function member(union: DiscriminatedSchema, value: unknown): AnySchema | undefined {
  const tag = (value as Record<string, unknown> | null | undefined)?.[union._zod.def.discriminator];
  return union._zod.def.options.find((o) => (o._zod as { propValues?: Record<string, Set<unknown>> }).propValues?.[union._zod.def.discriminator]?.has(tag));
}

function schemaAt(schema: AnySchema, path: readonly PropertyKey[], raw: unknown, options: { stopAtUnion?: boolean } = {}): AnySchema | undefined {
  let node: AnySchema | undefined = unwrap(schema);
  for (let i = 0; ; i++) {
    if (isDiscriminated(node)) {
      if (i === path.length && options.stopAtUnion) return node;
      node = member(node, valueAt(raw, path.slice(0, i)));
      if (!node) return undefined;
      node = unwrap(node);
    }
    if (i === path.length) return node;
    const key = path[i];
    const def = node._zod.def as { type: string; shape?: Record<string, AnySchema>; element?: AnySchema };
    if (def.type === 'object' && typeof key === 'string' && def.shape && key in def.shape) node = unwrap(def.shape[key]!);
    else if (def.type === 'array' && typeof key === 'number' && def.element) node = unwrap(def.element);
    else return undefined;
  }
}

export function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let node: unknown = root;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

import { z } from 'zod';
import { normalizeOrigin, parseHost } from '../util/hosts.js';

/**
 * The configuration model (CONTRACT.md, "Configuration").
 *
 * The zod schema validates what a user wrote (after the ini import and the environment
 * overrides are merged in) and fills the plain defaults. Defaults that depend on other keys
 * (`backupDir` from `dataDir`, an app's `asset` from its `repo`) and relative paths are settled
 * afterwards by `loadConfig`, so the schema stays free of transforms and converts to JSON Schema.
 * Every object is strict: an unknown key is an error, so a typo never passes silently.
 */

export const COMPONENT_KINDS = ['container', 'app'] as const;
export const SERVICE_MANAGERS = ['systemd', 'command'] as const;

export const COMPONENT_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
/** GitHub `owner/name`: the owner is letters, digits and dashes; the name also takes `.` and `_`. */
export const REPO_PATTERN = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\/(?!\.\.?$)[A-Za-z0-9._-]{1,100}$/;
export const GITHUB_ACCOUNT_PATTERN = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;

const nonEmpty = (what = 'a string') =>
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

export const systemdManagerSchema = z.strictObject({
  manager: z.literal('systemd'),
  unit: nonEmpty().meta({ description: 'The systemd unit, e.g. `dunebugger`.' }),
  systemctl: z
    .array(nonEmpty(), { error: (iss) => (iss.input === undefined ? undefined : `expected a list of strings, like [systemctl], got ${describeValue(iss.input)}`) })
    .min(1, { error: 'must name a command, like [systemctl]' })
    .default(['systemctl'])
    .meta({ description: 'The systemctl command as an argument list, e.g. `[docker, exec, box, systemctl]`.' }),
});

export const commandManagerSchema = z.strictObject({
  manager: z.literal('command'),
  start: nonEmpty('a shell command').meta({ description: 'Shell command that starts the service.' }),
  stop: nonEmpty('a shell command').meta({ description: 'Shell command that stops the service.' }),
  status: nonEmpty('a shell command').meta({ description: 'Shell command that exits 0 when the service is running.' }),
});

export const serviceManagerSchema = z.discriminatedUnion('manager', [systemdManagerSchema, commandManagerSchema]);

const componentName = z
  .string()
  .regex(COMPONENT_NAME_PATTERN, {
    error: 'must be 1 to 63 characters of a-z, 0-9, "-" or "_", starting with a letter or digit',
  })
  .meta({ description: 'Unique; used in file names, URLs and messages.' });

const repo = z
  .string()
  .regex(REPO_PATTERN, { error: 'must look like owner/name' })
  .meta({ description: 'GitHub repository, `owner/name`.' });

export const containerComponentSchema = z
  .strictObject({
    name: componentName,
    kind: z.literal('container'),
    repo,
    composeFile: nonEmpty('a path').meta({ description: 'The docker compose file that pins the image tag.' }),
    service: nonEmpty('a compose service name').meta({ description: 'The service in the compose file.' }),
    health: healthSchema.optional(),
    minFreeMB: z
      .number()
      .min(0, { error: 'expected a number >= 0' })
      .default(500)
      .meta({ description: 'Free disk (MB) validate requires where the engine keeps images; backupDir is checked for the compose file copy too.' }),
  })
  .meta({ description: 'A service of a docker compose file; its version is the image tag.' });

export const appComponentSchema = z
  .strictObject({
    name: componentName,
    kind: z.literal('app'),
    repo,
    installPath: nonEmpty('a path').meta({ description: 'Directory the release tarball is installed into; holds `VERSION`.' }),
    asset: nonEmpty('a file name')
      .optional()
      .meta({ description: 'Release asset name; `{version}` is replaced. Default `<repo name>-{version}.tar.gz`.' }),
    service: serviceManagerSchema,
    health: healthSchema.optional(),
    minFreeMB: z
      .number()
      .min(0, { error: 'expected a number >= 0' })
      .default(1000)
      .meta({ description: 'Free disk (MB) validate requires beside installPath, at least; the download and the backup are checked on their own disks, and needs on one disk add up.' }),
    venv: nonEmpty('a path')
      .optional()
      .meta({ description: 'Python virtualenv used to install `requirements.txt` (keep it outside installPath: the tree is replaced); none => the system pip3.' }),
    pipInstall: z
      .array(nonEmpty('an argument'))
      .min(1, { error: 'expected at least the pip program' })
      .optional()
      .meta({ description: 'The command that installs requirements, as an argument list; `-r <file>` is appended. Default `[<venv>/bin/pip, install]`, or `[pip3, install]` without a venv.' }),
    settleSeconds: z
      .number()
      .min(0, { error: 'expected a number >= 0' })
      .max(600, { error: 'expected at most 600' })
      .default(2)
      .meta({ description: 'How long the service must stay active after the update before it counts as running.' }),
    maxDownloadMB: z
      .number()
      .positive({ error: 'expected a number > 0' })
      .default(1024)
      .meta({ description: 'Largest release asset the updater will download.' }),
  })
  .meta({ description: 'A directory installed from a release tarball and run by a service manager.' });

export const componentSchema = z.discriminatedUnion('kind', [containerComponentSchema, appComponentSchema]);

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

export const configSchema = z
  .strictObject({
    server: serverSchema.prefault({}).meta({ description: 'The HTTP API and WebSocket.' }),
    dataDir: nonEmpty('a path').default('./data').meta({ description: 'updater.db lives here.' }),
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
    components: z.array(componentSchema).default([]).meta({ description: 'What the updater keeps current; none: the embedded demo runs.' }),
  })
  .meta({ title: 'dune-updater configuration' });

function portError(iss: { input?: unknown }): string {
  return `expected an integer between 0 and 65535, got ${describeValue(iss.input)}`;
}

/** What a user may write (every key with a default is optional). */
export type ConfigInput = z.input<typeof configSchema>;

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

export interface HealthConfig {
  url: string;
  timeoutSeconds: number;
}

export interface SystemdServiceManager {
  manager: 'systemd';
  unit: string;
  /** The systemctl command as an argument list; default `['systemctl']`. */
  systemctl: string[];
}

export interface CommandServiceManager {
  manager: 'command';
  start: string;
  stop: string;
  status: string;
}

export type ServiceManagerConfig = SystemdServiceManager | CommandServiceManager;

export interface ContainerComponent {
  name: string;
  kind: 'container';
  repo: string;
  /** Absolute. */
  composeFile: string;
  service: string;
  health?: HealthConfig;
  minFreeMB: number;
}

export interface AppComponent {
  name: string;
  kind: 'app';
  repo: string;
  /** Absolute. */
  installPath: string;
  /** Release asset name with a `{version}` placeholder, e.g. `dunebugger-{version}.tar.gz`. */
  asset: string;
  service: ServiceManagerConfig;
  health?: HealthConfig;
  minFreeMB: number;
  /** Absolute, when set. */
  venv?: string;
  /** The install command as an argument list; `-r <file>` is appended. */
  pipInstall?: string[];
  settleSeconds: number;
  maxDownloadMB: number;
}

export type ComponentConfig = ContainerComponent | AppComponent;
export type ComponentKind = ComponentConfig['kind'];

/** The validated configuration: defaults filled, paths absolute. */
export interface Config {
  server: ServerConfig;
  /** Absolute. */
  dataDir: string;
  /** Absolute. */
  backupDir: string;
  backupRetention: number;
  checkIntervalHours: number;
  includePrerelease: boolean;
  github: GithubConfig;
  components: ComponentConfig[];
}

/** The schema's own output, before derived defaults and path resolution. */
export type ParsedConfig = z.output<typeof configSchema>;

// Compile-time guard: the hand-written types stay in step with the schema.
type Assert<T extends true> = T;
export type _SchemaMatchesTypes = Assert<
  z.output<typeof containerComponentSchema> extends ContainerComponent
    ? z.output<typeof serviceManagerSchema> extends ServiceManagerConfig
      ? z.output<typeof healthSchema> extends HealthConfig
        ? Omit<z.output<typeof appComponentSchema>, 'asset'> extends Omit<AppComponent, 'asset'>
          ? Omit<ParsedConfig, 'backupDir' | 'components'> extends Omit<Config, 'backupDir' | 'components'>
            ? true
            : false
          : false
        : false
      : false
    : false
>;

/** JSON Schema (draft 2020-12) of what a user may write, for generated docs. */
export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' });
}

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
export const TOP_LEVEL_KEYS = Object.keys(configSchema.shape) as (keyof typeof configSchema.shape)[];
export const NESTED_KEYS: Record<string, string[]> = {
  server: Object.keys(serverSchema.shape),
  github: Object.keys(githubSchema.shape),
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
]);

/**
 * The keys allowed in the object at `path` of the raw input (for "did you mean" hints),
 * or undefined when unknown.
 */
export function knownKeysAt(path: readonly PropertyKey[], raw: unknown): string[] | undefined {
  const node = valueAt(raw, path);
  const [first, index, third, ...rest] = path;
  if (path.length === 0) return Object.keys(configSchema.shape);
  if (path.length === 1 && (first === 'server' || first === 'github')) return NESTED_KEYS[first];
  if (first !== 'components' || typeof index !== 'number' || rest.length > 0) return undefined;
  if (third === undefined) {
    const kind = (node as { kind?: unknown } | undefined)?.kind;
    if (kind === 'container') return Object.keys(containerComponentSchema.shape);
    if (kind === 'app') return Object.keys(appComponentSchema.shape);
    return undefined;
  }
  if (third === 'health') return Object.keys(healthSchema.shape);
  if (third === 'service') {
    const manager = (node as { manager?: unknown } | undefined)?.manager;
    if (manager === 'systemd') return Object.keys(systemdManagerSchema.shape);
    if (manager === 'command') return Object.keys(commandManagerSchema.shape);
  }
  return undefined;
}

export function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let node: unknown = root;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ini from 'ini';
import YAML from 'yaml';
import { z } from 'zod';
import type { Component } from '../core/component.js';
import { KINDS, kindNames, type ComponentConfig } from '../kinds/index.js';
import type { ComponentKind, ComponentOf } from '../kinds/kind.js';
import { DEMO_CONFIG } from './demo.js';
import { ConfigError, describeFsError, formatPath } from './errors.js';
import {
  COMPONENT_NAME_PATTERN,
  GITHUB_ACCOUNT_PATTERN,
  NESTED_KEYS,
  STRING_KEYS,
  TOP_LEVEL_KEYS,
  configSchemaFor,
  describeValue,
  issueMessage,
  knownKeysAt,
  requiredBy,
  valueAt,
  type Config,
  type ConfigSchema,
  type NatsConfig,
  type ParsedConfig,
} from './schema.js';

export interface LoadConfigOptions {
  /** `--config PATH`; relative to `cwd`. */
  configPath?: string;
  /** `--ini dunebugger.conf`; relative to `cwd`. */
  iniPath?: string;
  /** Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Default `process.cwd()`. */
  cwd?: string;
}

/** The component kinds a configuration may name; default the registry, `KINDS`. */
export interface KindRegistry<K extends readonly ComponentKind[] = typeof KINDS> {
  kinds?: K;
}

export interface LoadedConfig<C extends Component = ComponentConfig> {
  config: Config<C>;
  /** The YAML path, the ini path, both joined by ` + `, or "embedded default". */
  source: string;
}

export const EMBEDDED_SOURCE = 'embedded default';
export const DEFAULT_CONFIG_FILE = 'updater.yaml';

/** `UPDATER_*` variables read elsewhere, never config keys. */
const IGNORED_ENV = new Set(['fault', 'config', 'loglevel', 'requesttimeoutms']);

/** The seed's defaults for what `[Updater]` does not say. */
export const INI_DEFAULTS = {
  githubAccount: 'marco-svitol',
  dockerComposePath: '/opt/dunebugger/docker-compose.yml',
  coreInstallPath: '/opt/dunebugger/core',
  backupPath: '/opt/dunebugger/backups',
} as const;

/** Where a value came from: the directory its relative paths are taken from, and a name for messages. */
interface Origin {
  baseDir: string;
  /** `UPDATER_DATA_DIR`, `[Updater] backupPath`; none for the YAML file and defaults. */
  label?: string;
}

/** The configuration being assembled, before validation. */
interface Draft {
  raw: Record<string, unknown>;
  /** Keyed by dotted path (`server.port`, `components.1.composeFile`); the longest prefix wins. */
  origins: Map<string, Origin>;
  /** The directory of the YAML file, else the working directory. */
  baseDir: string;
  issues: string[];
  /** The schema of the whole file, for the kinds given. */
  schema: ConfigSchema;
}

/** The schema of the configuration for a list of kinds (checked: unique names, each schema's `kind` its own). */
export function configSchemaOf(kinds: readonly ComponentKind[]): ConfigSchema {
  const seen = new Set<string>();
  for (const k of kinds) {
    if (seen.has(k.kind)) throw new Error(`two component kinds are named "${k.kind}"`);
    seen.add(k.kind);
    const literal = (k.configSchema.shape.kind as { value?: unknown }).value;
    if (literal !== k.kind) throw new Error(`the configuration schema of kind "${k.kind}" says kind: ${String(literal)}`);
  }
  return configSchemaFor(kinds.map((k) => k.configSchema));
}

/** JSON Schema (draft 2020-12) of what a user may write, for generated docs. */
export function configJsonSchema(kinds: readonly ComponentKind[] = KINDS): Record<string, unknown> {
  return z.toJSONSchema(configSchemaOf(kinds), { io: 'input', unrepresentable: 'any' });
}

/**
 * Reads, merges and validates the configuration: the YAML file (or the embedded default),
 * then the seed's ini, then `UPDATER_*` variables. Throws a ConfigError listing every problem.
 * Writes nothing. `kinds` are the component kinds it may name (default the registry): a kind
 * not among them is an error naming the known ones.
 */
export function loadConfig<K extends readonly ComponentKind[] = typeof KINDS>(opts: LoadConfigOptions = {}, registry: KindRegistry<K> = {}): LoadedConfig<ComponentOf<K[number]>> {
  const kinds: readonly ComponentKind[] = registry.kinds ?? KINDS;
  const cwd = path.resolve(opts.cwd ?? process.cwd());
  const env = opts.env ?? process.env;

  let yamlPath: string | undefined;
  if (opts.configPath !== undefined) yamlPath = path.resolve(cwd, opts.configPath);
  else if (existsSync(path.join(cwd, DEFAULT_CONFIG_FILE))) yamlPath = path.join(cwd, DEFAULT_CONFIG_FILE);
  const iniPath = opts.iniPath !== undefined ? path.resolve(cwd, opts.iniPath) : undefined;
  const source = [yamlPath, iniPath].filter((p) => p !== undefined).join(' + ') || EMBEDDED_SOURCE;

  let raw: Record<string, unknown>;
  if (yamlPath !== undefined) raw = readYaml(yamlPath, source);
  else if (iniPath !== undefined) raw = {};
  else raw = structuredClone(DEMO_CONFIG);

  const draft: Draft = {
    raw,
    origins: new Map(),
    baseDir: yamlPath !== undefined ? path.dirname(yamlPath) : cwd,
    issues: [],
    schema: configSchemaOf(kinds),
  };
  if (iniPath !== undefined) applyIni(draft, iniPath, readText(iniPath, source));
  applyEnv(draft, env, cwd);

  const parsed = draft.schema.safeParse(draft.raw, { error: issueMessage });
  const issues = [...draft.issues];
  if (!parsed.success) issues.push(...parsed.error.issues.flatMap((issue) => formatIssue(issue, draft)));
  issues.push(...duplicateNames(draft));
  issues.push(...unknownRemoteComponent(draft));
  if (issues.length > 0 || !parsed.success) throw new ConfigError(source, issues);

  return { config: finish(parsed.data, draft, kinds) as Config<ComponentOf<K[number]>>, source };
}

// ---------------------------------------------------------------- files

function readText(file: string, source: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(source, [`cannot read ${file}: ${describeFsError(err)}`]);
  }
}

function readYaml(file: string, source: string): Record<string, unknown> {
  const text = readText(file, source);
  const lineCounter = new YAML.LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      source,
      doc.errors.map((err) => {
        const { line, col } = lineCounter.linePos(err.pos[0]);
        return `YAML syntax error at line ${line}, column ${col}: ${err.message}`;
      }),
    );
  }
  let value: unknown;
  try {
    value = doc.toJS();
  } catch (err) {
    throw new ConfigError(source, [`cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`]);
  }
  if (value === null || value === undefined) return {};
  if (!isPlainObject(value)) {
    throw new ConfigError(source, [
      `the top level must be a mapping of keys (server:, components:, ...), got ${describeValue(value)}`,
    ]);
  }
  return value;
}

// ---------------------------------------------------------------- dunebugger.conf

/**
 * The seed's `[Updater]` section. Its top-level values override the YAML's; its components
 * (core, scheduler, remote) are used only when the YAML has none. Unknown keys of the section
 * are ignored (the seed's file has more sections and keys than the updater reads).
 */
function applyIni(draft: Draft, iniPath: string, text: string): void {
  const parsed = ini.parse(text) as Record<string, unknown>;
  const sectionName =
    Object.keys(parsed).find((k) => k === 'Updater') ?? Object.keys(parsed).find((k) => k.toLowerCase() === 'updater');
  const section = sectionName !== undefined ? parsed[sectionName] : undefined;
  if (!isPlainObject(section)) {
    draft.issues.push(`${iniPath}: no [Updater] section`);
    return;
  }
  // configparser reads keys case-insensitively; so do we.
  const values = new Map<string, unknown>();
  for (const [key, value] of Object.entries(section)) {
    const v = typeof value === 'string' ? value.trim() : value;
    if (v !== '' && v !== undefined && v !== null) values.set(key.toLowerCase(), v);
  }
  const get = (key: string): unknown => values.get(key.toLowerCase());
  const iniDir = path.dirname(iniPath);
  const from = (key: string): Origin => ({ baseDir: iniDir, label: `[Updater] ${key}` });
  const set = (target: string, iniKey: string, value: unknown): void => {
    draft.raw[target] = value;
    setOrigin(draft, [target], from(iniKey));
  };

  const interval = get('updateCheckIntervalHours');
  if (interval !== undefined) set('checkIntervalHours', 'updateCheckIntervalHours', toNumber(interval));
  const prerelease = get('includePrerelease');
  if (prerelease !== undefined) set('includePrerelease', 'includePrerelease', toBoolean(prerelease));
  const backupPath = get('backupPath');
  if (backupPath !== undefined) set('backupDir', 'backupPath', backupPath);
  else if (draft.raw.backupDir === undefined) draft.raw.backupDir = INI_DEFAULTS.backupPath;

  const account = get('githubAccount');
  if (account !== undefined && (typeof account !== 'string' || !GITHUB_ACCOUNT_PATTERN.test(account))) {
    draft.issues.push(
      `[Updater] githubAccount: must be a GitHub account name (letters, digits and "-"), got ${describeValue(account)}`,
    );
    return;
  }
  const existing = draft.raw.components;
  if (existing !== undefined && existing !== null && !(Array.isArray(existing) && existing.length === 0)) return;

  const owner = account ?? INI_DEFAULTS.githubAccount;
  const composeFile = get('dockerComposePath') ?? INI_DEFAULTS.dockerComposePath;
  draft.raw.components = [
    {
      name: 'core',
      kind: 'app',
      repo: `${owner}/dunebugger`,
      installPath: get('coreInstallPath') ?? INI_DEFAULTS.coreInstallPath,
      asset: 'dunebugger-{version}.tar.gz',
      service: { manager: 'systemd', unit: 'dunebugger' },
      // The device's own settings (this ini among them) live in app/config/ and survive updates.
      preserve: ['app/config/*.conf'],
    },
    { name: 'scheduler', kind: 'container', repo: `${owner}/dunebugger-scheduler`, composeFile, service: 'scheduler' },
    { name: 'remote', kind: 'container', repo: `${owner}/dunebugger-remote`, composeFile, service: 'remote' },
  ];
  setOrigin(draft, ['components'], { baseDir: iniDir });
  for (const index of [0, 1, 2]) {
    if (account !== undefined) setOrigin(draft, ['components', index, 'repo'], from('githubAccount'));
  }
  if (get('coreInstallPath') !== undefined) setOrigin(draft, ['components', 0, 'installPath'], from('coreInstallPath'));
  if (get('dockerComposePath') !== undefined) {
    for (const index of [1, 2]) setOrigin(draft, ['components', index, 'composeFile'], from('dockerComposePath'));
  }
}

/** A numeric string becomes a number; anything else is left for validation to name. */
function toNumber(value: unknown): unknown {
  if (typeof value === 'string' && /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(value)) return Number(value);
  return value;
}

/** configparser's booleans: true/false, yes/no, on/off, 1/0, in any case. */
function toBoolean(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const v = value.toLowerCase();
  if (['true', 'yes', 'on', '1'].includes(v)) return true;
  if (['false', 'no', 'off', '0'].includes(v)) return false;
  return value;
}

// ---------------------------------------------------------------- environment

interface EnvOverride {
  variable: string;
  text: string;
  /** `['checkIntervalHours']` or `['server', 'port']`. */
  path: string[];
}

/**
 * `UPDATER_<KEY>=value` sets a top-level key, `UPDATER_<KEY>__<SUB>=value` a key of `server` or
 * `github`. KEY matches case-insensitively, underscores ignored. Values are YAML (`0` is a
 * number, `{port: 9000}` a mapping, merged over the file's mapping); keys that hold a plain
 * string take the text as written. Empty values are ignored, so an unset `${VAR}` in a compose
 * file cannot clear a token. Variables that match no key are ignored.
 */
function applyEnv(draft: Draft, env: NodeJS.ProcessEnv, cwd: string): void {
  const overrides: EnvOverride[] = [];
  for (const [variable, text] of Object.entries(env)) {
    if (!variable.startsWith('UPDATER_') || text === undefined || text.trim() === '') continue;
    const segments = variable.slice('UPDATER_'.length).split('__').map(normalizeKey);
    const [first, ...rest] = segments;
    if (first === undefined || first === '' || IGNORED_ENV.has(first) || rest.includes('')) continue;
    const top = TOP_LEVEL_KEYS.find((key) => normalizeKey(key) === first);
    if (top === undefined) continue;
    const nestedKeys = NESTED_KEYS[top];
    if (rest.length > 0 && (nestedKeys === undefined || rest.length > 1)) {
      const parent = [top, ...rest.slice(0, -1)];
      draft.issues.push(`${formatPath(parent)} (from ${variable}): has no keys that can be set one by one`);
      continue;
    }
    const sub = rest[0];
    const subKey = sub === undefined ? undefined : (nestedKeys?.find((key) => normalizeKey(key) === sub) ?? sub);
    overrides.push({ variable, text, path: subKey === undefined ? [top] : [top, subKey] });
  }
  // Whole keys first, so `UPDATER_SERVER__PORT` wins over a port inside `UPDATER_SERVER`.
  overrides.sort((a, b) => a.path.length - b.path.length || (a.variable < b.variable ? -1 : a.variable > b.variable ? 1 : 0));

  const setBy = new Map<string, EnvOverride>();
  for (const override of overrides) {
    const { variable, text, path: keyPath } = override;
    const dotted = keyPath.join('.');
    const label = `${formatPath(keyPath)} (from ${variable})`;
    const earlier = setBy.get(dotted);
    if (earlier !== undefined) {
      if (earlier.text !== text) draft.issues.push(`${label}: conflicts with ${earlier.variable}, which sets it differently`);
      continue;
    }
    setBy.set(dotted, override);

    let value: unknown;
    try {
      value = parseEnvValue(dotted, text);
    } catch (err) {
      const message = err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err);
      draft.issues.push(`${label}: not valid YAML: ${message}`);
      continue;
    }
    const origin: Origin = { baseDir: cwd, label: variable };
    const [top, sub] = keyPath as [string, string | undefined];
    if (sub !== undefined) {
      const current = draft.raw[top];
      const target = isPlainObject(current) ? current : {};
      target[sub] = value;
      draft.raw[top] = target;
      setOrigin(draft, keyPath, origin);
    } else if (NESTED_KEYS[top] !== undefined && isPlainObject(value)) {
      const current = draft.raw[top];
      const target = isPlainObject(current) ? current : {};
      for (const [key, v] of Object.entries(value)) {
        target[key] = v;
        setOrigin(draft, [top, key], origin);
      }
      draft.raw[top] = target;
    } else {
      draft.raw[top] = value;
      setOrigin(draft, [top], origin);
    }
  }
}

function parseEnvValue(dottedPath: string, text: string): unknown {
  if (STRING_KEYS.has(dottedPath)) {
    const trimmed = text.trim();
    if (['null', 'Null', 'NULL', '~'].includes(trimmed)) return null;
    if (trimmed.startsWith('"') || trimmed.startsWith("'")) return YAML.parse(trimmed) as unknown;
    return text;
  }
  return YAML.parse(text, { prettyErrors: false }) as unknown;
}

function normalizeKey(key: string): string {
  return key.toLowerCase().replace(/_/g, '');
}

// ---------------------------------------------------------------- issues

function formatIssue(issue: z.core.$ZodIssue, draft: Draft): string[] {
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeysAt(draft.schema, issue.path, draft.raw) ?? [];
    return issue.keys.map((key) => line(draft, [...issue.path, key], `unknown key "${key}"${suggest(key, known)}`));
  }
  if (issue.code === 'invalid_union' && 'discriminator' in issue && typeof issue.discriminator === 'string') {
    const options = ((issue as { options?: unknown[] }).options ?? []).map(String).join(', ');
    const value = valueAt(draft.raw, issue.path);
    return [line(draft, issue.path, value === undefined ? `required, one of ${options}` : `must be one of ${options}`)];
  }
  let message = issue.message;
  if (message === 'required') {
    // `required for kind container`: a key only some kinds (or service managers) have.
    const by = requiredBy(draft.schema, issue.path, draft.raw);
    if (by) message = `required for ${by.key} ${by.value}`;
  }
  return [line(draft, issue.path, message)];
}

function line(draft: Draft, issuePath: readonly PropertyKey[], message: string): string {
  const label = originAt(draft, issuePath).label;
  return `${formatPath(issuePath)}${label !== undefined ? ` (from ${label})` : ''}: ${message}`;
}

/** ` (did you mean "composeFile"?)` for a near miss among the keys allowed there. */
function suggest(key: string, known: readonly string[]): string {
  const norm = (s: string): string => s.toLowerCase().replace(/[_-]/g, '');
  const match =
    known.find((k) => norm(k) === norm(key)) ??
    (key.length > 3 ? known.find((k) => editDistance(k.toLowerCase(), key.toLowerCase()) <= 2) : undefined);
  return match !== undefined ? ` (did you mean "${match}"?)` : '';
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

function duplicateNames(draft: Draft): string[] {
  const components = draft.raw.components;
  if (!Array.isArray(components)) return [];
  const seen = new Set<string>();
  const issues: string[] = [];
  components.forEach((component: unknown, index) => {
    const name = isPlainObject(component) ? component.name : undefined;
    if (typeof name !== 'string') return;
    if (seen.has(name)) issues.push(line(draft, ['components', index, 'name'], `duplicate component name "${name}"`));
    seen.add(name);
  });
  return issues;
}

/**
 * `manifest.remoteComponent`, when written, must name a configured component (a typo would
 * otherwise compare `min_remote_version` with the updater's own version without a word). The
 * default, `remote`, may name none. With no components at all (the demo) there is nothing to name.
 */
function unknownRemoteComponent(draft: Draft): string[] {
  const name = valueAt(draft.raw, ['manifest', 'remoteComponent']);
  const components = draft.raw.components;
  // A name that is not a name at all is already an issue of the schema's.
  if (typeof name !== 'string' || !COMPONENT_NAME_PATTERN.test(name) || !Array.isArray(components) || components.length === 0) return [];
  const names = components.map((c: unknown) => (isPlainObject(c) ? c.name : undefined)).filter((n): n is string => typeof n === 'string');
  if (names.includes(name)) return [];
  return [line(draft, ['manifest', 'remoteComponent'], `names no configured component (configured: ${names.join(', ') || 'none'})`)];
}

// ---------------------------------------------------------------- origins and paths

function setOrigin(draft: Draft, keyPath: readonly PropertyKey[], origin: Origin): void {
  const dotted = keyPath.map(String).join('.');
  for (const key of [...draft.origins.keys()]) {
    if (key.startsWith(`${dotted}.`)) draft.origins.delete(key);
  }
  draft.origins.set(dotted, origin);
}

function originAt(draft: Draft, keyPath: readonly PropertyKey[]): Origin {
  for (let n = keyPath.length; n > 0; n--) {
    const origin = draft.origins.get(keyPath.slice(0, n).map(String).join('.'));
    if (origin !== undefined) return origin;
  }
  return { baseDir: draft.baseDir };
}

/** Derived defaults and absolute paths: the top level's here, each component's by its kind. */
function finish(parsed: ParsedConfig, draft: Draft, kinds: readonly ComponentKind[]): Config<Component> {
  const resolveAt = (keyPath: readonly PropertyKey[], value: string): string =>
    path.resolve(originAt(draft, keyPath).baseDir, value);
  const dataDir = resolveAt(['dataDir'], parsed.dataDir);
  const components = parsed.components.map((parsedComponent, index) => {
    // Validated by its kind's schema, which has the keys of every component (kinds/kind.ts, componentSchema).
    const component = parsedComponent as unknown as Component;
    const kind = kinds.find((k) => k.kind === component.kind);
    if (!kind) throw new Error(`kind "${component.kind}" passed validation but is not among ${kindNames(kinds).join(', ')}`);
    const at = (key: string, value: string): string => resolveAt(['components', index, key], value);
    return kind.resolve ? kind.resolve(component, at) : component;
  });
  return {
    server: parsed.server,
    dataDir,
    backupDir: parsed.backupDir !== undefined ? resolveAt(['backupDir'], parsed.backupDir) : path.join(dataDir, 'backups'),
    backupRetention: parsed.backupRetention,
    checkIntervalHours: parsed.checkIntervalHours,
    includePrerelease: parsed.includePrerelease,
    github: {
      ...parsed.github,
      apiUrl: parsed.github.apiUrl.replace(/\/+$/, ''),
      rawUrl: parsed.github.rawUrl.replace(/\/+$/, ''),
    },
    manifest: parsed.manifest,
    ...(parsed.webpubsub ? { webpubsub: parsed.webpubsub } : {}),
    ...(parsed.nats ? { nats: natsPaths(parsed.nats, (key, value) => resolveAt(['nats', ...key], value)) } : {}),
    components,
  };
}

/** The credentials file and TLS files, absolute (relative to where each was written). */
function natsPaths(nats: NatsConfig, at: (key: string[], value: string) => string): NatsConfig {
  const tls = nats.tls;
  return {
    ...nats,
    ...(nats.credentials ? { credentials: at(['credentials'], nats.credentials) } : {}),
    ...(tls
      ? {
          tls: {
            ...(tls.ca !== undefined ? { ca: at(['tls', 'ca'], tls.ca) } : {}),
            ...(tls.cert !== undefined ? { cert: at(['tls', 'cert'], tls.cert) } : {}),
            ...(tls.key !== undefined ? { key: at(['tls', 'key'], tls.key) } : {}),
          },
        }
      : {}),
  };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

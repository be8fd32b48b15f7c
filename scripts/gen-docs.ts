/**
 * Generates docs/configuration-reference.md (from the config schema) and docs/api.md (from the
 * OpenAPI description the server builds from its route schemas), so neither can drift from
 * the code. `npm run docs` writes them; test/docs.test.ts fails when they are out of date.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { configJsonSchema } from '../src/config/index.js';
import { inbound, jsonSchema, outbound } from '../src/contract/index.js';

type Schema = Record<string, any>;

function typeOf(s: Schema): string {
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (s.enum) return s.enum.map((v: unknown) => `\`${JSON.stringify(v)}\``).join(' \\| ');
  if (s.anyOf) return s.anyOf.map(typeOf).join(' or ');
  if (s.oneOf) return s.oneOf.map(typeOf).join(' or ');
  if (s.type === 'array') return `list of ${s.items ? typeOf(s.items) : 'values'}`;
  if (s.type === 'integer' || s.type === 'number') {
    const bounds = [s.minimum !== undefined ? `≥ ${s.minimum}` : '', s.maximum !== undefined && s.maximum < 1e15 ? `≤ ${s.maximum}` : '', s.exclusiveMinimum !== undefined ? `> ${s.exclusiveMinimum}` : ''].filter(Boolean).join(', ');
    return `${s.type}${bounds ? ` (${bounds})` : ''}`;
  }
  if (s.type === 'object') return 'mapping';
  return s.type ?? 'value';
}

/** A request or message field's type, with its limits and `or null`. */
function fieldType(s: Schema): string {
  const types = Array.isArray(s.type) ? (s.type as string[]) : null;
  const base = types ? types.map((t) => typeOf({ ...s, type: t })).join(' or ') : typeOf(s);
  const limits = [
    s.minLength !== undefined && s.maxLength !== undefined ? `${s.minLength} to ${s.maxLength} characters` : s.maxLength !== undefined ? `at most ${s.maxLength} characters` : '',
    s.pattern ? `matching \`${s.pattern}\`` : '',
  ].filter(Boolean);
  return limits.length ? `${base} (${limits.join(', ')})` : base;
}

function rows(props: Schema, required: string[], prefix: string, out: string[]) {
  for (const [key, s] of Object.entries(props)) {
    const path = `${prefix}${key}`;
    const def = s.default === undefined ? (required.includes(key) ? '**required**' : '—') : `\`${JSON.stringify(s.default)}\``;
    out.push(`| \`${path}\` | ${typeOf(s)} | ${def} | ${(s.description ?? '').replaceAll('|', '\\|').replaceAll('\n', ' ')} |`);
    if (s.type === 'object' && s.properties) rows(s.properties, s.required ?? [], `${path}.`, out);
    if (s.oneOf && s.oneOf.every((o: Schema) => o.type === 'object')) {
      for (const o of s.oneOf) {
        const tag = Object.entries(o.properties).find(([, v]) => (v as Schema).const !== undefined);
        out.push(`| \`${path}\` with ${tag ? `\`${tag[0]}: ${(tag[1] as Schema).const}\`` : 'variant'} | | | |`);
        rows(o.properties, o.required ?? [], `${path}.`, out);
      }
    }
  }
}

export function configReference(): string {
  const schema = configJsonSchema() as Schema;
  const out = [
    '# Configuration reference',
    '',
    'Generated from the schemas in `src/config/schema.ts` and of each kind (`src/kinds/<kind>/config.ts`) by `npm run docs`; do not edit by hand.',
    'How the file is found, environment overrides and the `--ini` import: [configuration.md](configuration.md).',
    '',
    '## Top level',
    '',
    '| key | type | default | meaning |',
    '|---|---|---|---|',
  ];
  const { components, ...top } = schema.properties;
  rows(top, schema.required ?? [], '', out);
  for (const variant of components.items.oneOf as Schema[]) {
    const kind = variant.properties.kind.const;
    out.push('', `## \`components[]\` with \`kind: ${kind}\``, '', variant.description ?? '', '', '| key | type | default | meaning |', '|---|---|---|---|');
    rows(variant.properties, variant.required ?? [], '', out);
  }
  out.push('', '## Example', '', '```yaml', EXAMPLE.trim(), '```', '');
  return out.join('\n');
}

const EXAMPLE = `
server: { host: 127.0.0.1, port: 8080, token: null }
dataDir: /var/lib/updater
backupDir: /opt/dunebugger/backups
backupRetention: 3
checkIntervalHours: 24
includePrerelease: false
github: { token: null }
components:
  - name: scheduler
    kind: container
    repo: marco-svitol/dunebugger-scheduler
    composeFile: /opt/dunebugger/docker-compose.yml
    service: scheduler
    health: { url: http://127.0.0.1:8081/health, timeoutSeconds: 60 }
  - name: core
    kind: app
    repo: marco-svitol/dunebugger
    installPath: /opt/dunebugger/core
    asset: "dunebugger-{version}.tar.gz"
    service: { manager: systemd, unit: dunebugger }
    venv: /opt/dunebugger/venv
    health: { url: http://127.0.0.1:8080/health, timeoutSeconds: 60 }
`;

export async function apiReference(): Promise<string> {
  // The OpenAPI document is what the running server serves at /openapi.json.
  const { apiWorld } = await import('../test/support/api-harness.js');
  const w = await apiWorld();
  try {
    const doc = (await w.app.inject('/openapi.json')).json<Schema>();
    const out = [
      '# HTTP API',
      '',
      'Generated from the route schemas (the OpenAPI document served at `GET /openapi.json`) by `npm run docs`; do not edit by hand.',
      'Errors are always `{ "error": { "code", "message" } }`, 408, 413, 414 and 431 included. With `server.token` set, mutations need `Authorization: Bearer <token>`. The WebSocket protocol: [websocket.md](websocket.md).',
      '',
      'Every request is checked in this order ([security.md](security.md)): with no `server.token`, the `Host` header must name the loopback, `server.host` or an entry of `server.allowedHosts` (else **421** `misdirected_host`, on reads too); a mutation (or the `/ws` upgrade) that carries an `Origin` other than the updater\'s own or one of `server.allowedOrigins` gets **403** `forbidden_origin`; then the token (**401** `unauthorized`); then the body: none, or JSON (another content type: **415** `unsupported_media_type`) that is an object (`null`, arrays, scalars: **400** `bad_body`). A request must arrive whole within 30 s (**408** `request_timeout`).',
      '',
    ];
    for (const [path, methods] of Object.entries(doc.paths as Schema)) {
      for (const [method, op] of Object.entries(methods as Schema)) {
        out.push(`## ${method.toUpperCase()} ${path}`, '', op.summary ?? '', '');
        if (op.description) out.push(op.description, '');
        const params = (op.parameters ?? []) as Schema[];
        if (params.length) {
          out.push('| parameter | in | type | required |', '|---|---|---|---|');
          for (const p of params) out.push(`| \`${p.name}\` | ${p.in} | ${typeOf(p.schema ?? {})} | ${p.required ? 'yes' : 'no'} |`);
          out.push('');
        }
        const body = op.requestBody?.content?.['application/json']?.schema;
        const fields = Object.keys(body?.properties ?? {});
        if (body && fields.length === 0) out.push('Body: none, or `{}`.', '');
        if (fields.length > 0) {
          out.push('Body (JSON):', '', '| field | type |', '|---|---|');
          for (const [k, v] of Object.entries(body.properties as Schema)) out.push(`| \`${k}\` | ${fieldType(v as Schema)} |`);
          out.push('');
        }
        out.push(...answerTables(op.responses ?? {}));
        out.push(`Answers: ${Object.keys(op.responses ?? {}).map((c) => `\`${c}\``).join(', ')}`, '');
      }
    }
    out.push(...messageReference());
    return out.join('\n');
  } finally {
    await w.close();
  }
}

/**
 * The fields of a successful answer declared inline by its route (the shared shapes, `Component`,
 * `Run`, `CheckResult`, are described elsewhere), one table for the codes that share a shape.
 */
function answerTables(responses: Schema): string[] {
  const shapes = new Map<string, { codes: string[]; schema: Schema }>();
  for (const [code, r] of Object.entries(responses)) {
    const schema = (r as Schema).content?.['application/json']?.schema as Schema | undefined;
    if (!code.startsWith('2') || !schema?.properties) continue;
    const key = JSON.stringify(schema);
    const entry = shapes.get(key) ?? { codes: [], schema };
    entry.codes.push(code);
    shapes.set(key, entry);
  }
  const out: string[] = [];
  for (const { codes, schema } of shapes.values()) {
    out.push(`Answer ${codes.map((c) => `\`${c}\``).join(', ')} (JSON):`, '', '| field | type | meaning |', '|---|---|---|');
    const rows = (s: Schema, path: string) => {
      for (const [k, v] of Object.entries((s.properties ?? {}) as Schema)) {
        const field = v as Schema;
        const p = path ? `${path}.${k}` : k;
        const optional = !(s.required ?? []).includes(k);
        out.push(`| \`${p}\` | ${fieldType(field)}${field.nullable ? ' or null' : ''}${optional ? ' (optional)' : ''} | ${(field.description ?? '').replaceAll('|', '\\|')} |`);
        if (field.type === 'object') rows(field, p);
        if (field.type === 'array' && field.items?.type === 'object') rows(field.items, `${p}[]`);
      }
    };
    rows(schema, '');
    out.push('');
  }
  return out;
}

/** Rows `| field | type |` of a message body, nested fields as `a.b`, `a[].b`, `a.<name>.b`. */
function fieldRows(s: Schema, path: string, out: string[]) {
  if (s.type === 'object' && s.properties) {
    for (const [k, v] of Object.entries(s.properties as Schema)) {
      const p = path ? `${path}.${k}` : k;
      const optional = !(s.required ?? []).includes(k);
      out.push(`| \`${p}\` | ${fieldType(v as Schema)}${optional ? ' (optional)' : ''} |`);
      fieldRows(v as Schema, p, out);
    }
  } else if (s.type === 'object' && typeof s.additionalProperties === 'object') {
    fieldRows(s.additionalProperties, `${path}.<name>`, out);
  } else if (s.type === 'array' && s.items) {
    fieldRows(s.items, `${path}[]`, out);
  }
}

/** The messages of /ws (and of every message transport), from the contract's schemas. */
function messageReference(): string[] {
  const out = [
    '## Messages (`/ws`)',
    '',
    'Generated from the same contract (`src/contract/`). Every message is `{"subject": string, "body": any}`; liveness, replay and limits: [websocket.md](websocket.md).',
    '',
    '### Inbound',
    '',
  ];
  for (const [subject, schema] of Object.entries(inbound)) {
    out.push(`#### \`${subject}\``, '');
    if (schema === undefined) {
      out.push('Body: ignored.', '');
      continue;
    }
    const s = jsonSchema(schema, 'input');
    const types = Array.isArray(s.type) ? (s.type as string[]) : [s.type];
    if (types.includes('object')) {
      out.push(`Body${types.includes('null') ? ' (none, or)' : ''}:`, '', '| field | type |', '|---|---|');
      fieldRows({ ...s, type: 'object' }, '', out);
      out.push('');
    } else out.push(`Body: ${fieldType(s)}${s.description ? `, ${s.description}` : ''}.`, '');
  }
  out.push('### Outbound', '');
  for (const [subject, schema] of Object.entries(outbound)) {
    out.push(`#### \`${subject}\``, '', '| field | type |', '|---|---|');
    fieldRows(jsonSchema(schema, 'output'), '', out);
    out.push('');
  }
  return out;
}

export const REFERENCE_FILE = fileURLToPath(new URL('../docs/configuration-reference.md', import.meta.url));
export const API_FILE = fileURLToPath(new URL('../docs/api.md', import.meta.url));

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(REFERENCE_FILE, configReference());
  writeFileSync(API_FILE, await apiReference());
  console.log(`wrote ${REFERENCE_FILE} and ${API_FILE}`);
}

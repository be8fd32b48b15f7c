/** The configuration of an `app` component: a directory installed from a release tarball, run by a service manager. */
import { z } from 'zod';
import { describeValue, healthSchema, nonEmpty } from '../../config/schema.js';
import type { ServiceManagerConfig } from '../../services/service-manager.js';
import { componentSchema, type PathResolver } from '../kind.js';

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
  start: nonEmpty('a shell command').meta({ description: 'Shell command that starts the service. Once it returns, `status` must say running: after an update, a status that says not running fails verify at once.' }),
  stop: nonEmpty('a shell command').meta({ description: 'Shell command that stops the service.' }),
  status: nonEmpty('a shell command').meta({ description: 'Shell command that exits 0 when the service is running.' }),
});

export const serviceManagerSchema = z.discriminatedUnion('manager', [systemdManagerSchema, commandManagerSchema], {
  // Not a mapping at all (`service: dunebugger`): say what one looks like. Other issues keep the loader's words.
  error: (iss) =>
    (iss as { code: string }).code === 'invalid_type' && iss.input !== undefined
      ? `expected a mapping like { manager: systemd, unit: NAME } or { manager: command, start: CMD, stop: CMD, status: CMD }, got ${describeValue(iss.input)}`
      : undefined,
});

/** A `preserve` glob as matched: without a leading `./` (matchesGlob would not match `./a` against `a`). */
export const normalizePattern = (pattern: string): string => pattern.replace(/^(?:\.\/+)+/, '');

/**
 * One `preserve` glob: relative to installPath and inside it. Checked here; a leading `./` is
 * dropped by `resolveApp`.
 */
const preservePattern = z
  .string()
  .min(1, { error: 'must not be empty (expected a glob, like app/config/*.conf)', abort: true })
  .refine((p) => !p.startsWith('/'), { error: (iss) => `must be relative to installPath, like app/config/*.conf; got the absolute ${JSON.stringify(iss.input)}`, abort: true })
  .refine((p) => !p.split('/').includes('..'), { error: (iss) => `must stay inside installPath: ".." is not allowed, got ${JSON.stringify(iss.input)}`, abort: true })
  .refine((p) => !['', '.'].includes(normalizePattern(p)) && !p.endsWith('/'), {
    error: (iss) => `must match files, like app/config/*.conf (a whole folder is app/config/**); got ${JSON.stringify(iss.input)}`,
  });

export const appComponentSchema = componentSchema('app', {
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
  preserve: z
    .array(preservePattern, { error: (iss) => (iss.input === undefined ? undefined : `expected a list of globs, like ["app/config/*.conf"], got ${describeValue(iss.input)}`) })
    .optional()
    .meta({
      description:
        'Device files that survive an update: globs relative to installPath (`*` does not cross `/`, `**` does), e.g. `["app/config/*.conf"]`. Each matching file of the installed tree is carried into the new tree unchanged; when the release ships different bytes there, its file is written beside it as `<file>.new`. The top-level `VERSION` is never kept. See docs/releases.md.',
    }),
}).meta({ description: 'A directory installed from a release tarball and run by a service manager.' });

export type AppComponentInput = z.output<typeof appComponentSchema>;

/** An app component: `installPath` (and `venv`) absolute, `asset` always set, `preserve` without leading `./`. */
export type AppComponent = Omit<AppComponentInput, 'asset' | 'service'> & {
  /** Release asset name with a `{version}` placeholder, e.g. `dunebugger-{version}.tar.gz`. */
  asset: string;
  service: ServiceManagerConfig;
};


export function resolveApp(parsed: AppComponentInput, path: PathResolver): AppComponent {
  const { venv, asset, preserve, ...rest } = parsed;
  const repoName = parsed.repo.slice(parsed.repo.indexOf('/') + 1);
  return {
    ...rest,
    installPath: path('installPath', parsed.installPath),
    asset: asset ?? `${repoName}-{version}.tar.gz`,
    ...(venv !== undefined ? { venv: path('venv', venv) } : {}),
    ...(preserve !== undefined ? { preserve: preserve.map(normalizePattern) } : {}),
  };
}

/**
 * An invalid or unreadable configuration. Start-up prints `message` and exits with code 2,
 * before anything is written.
 */
export class ConfigError extends Error {
  readonly code = 'invalid_config';
  /** Exit code the CLI uses for it (CONTRACT.md). */
  readonly exitCode = 2;

  constructor(
    /** Where the configuration came from: a file path, `a.yaml + b.conf`, or "embedded default". */
    readonly source: string,
    /** One line per problem, each `path: problem`, e.g. `components[1].composeFile: required for kind container`. */
    readonly issues: string[],
  ) {
    super(`${source}:\n${issues.map((issue) => `  ${issue}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** `['components', 1, 'composeFile']` => `components[1].composeFile`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '(top level)' : out;
}

/** A short description of a failed file operation: `no such file or directory`. */
export function describeFsError(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory, expected a file';
    case 'EEXIST':
      return 'exists and is not a directory';
    case 'ENOTDIR':
      return 'a parent is not a directory';
    case 'EROFS':
      return 'read-only file system';
    default:
      return err instanceof Error ? err.message : String(err);
  }
}

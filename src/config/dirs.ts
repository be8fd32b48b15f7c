import { mkdirSync } from 'node:fs';
import { ConfigError, describeFsError } from './errors.js';
import type { Config } from './schema.js';

/**
 * Creates `dataDir` and `backupDir` when missing (mkdir -p). Called once at start-up, after
 * `loadConfig` has validated the configuration; `loadConfig` itself never writes.
 * A directory that cannot be created is a ConfigError (exit code 2), naming the key.
 */
export function ensureDirs(config: Pick<Config, 'dataDir' | 'backupDir'>, source = 'configuration'): void {
  const issues: string[] = [];
  for (const key of ['dataDir', 'backupDir'] as const) {
    const dir = config[key];
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      issues.push(`${key}: cannot create ${dir}: ${describeFsError(err)}`);
    }
  }
  if (issues.length > 0) throw new ConfigError(source, issues);
}

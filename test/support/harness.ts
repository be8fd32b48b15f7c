/**
 * A real core (src/main.ts `createCore`: journal, engine, checker, application layer) on a real
 * SQLite file in a temp dir, with the test kind `dir` (DirDriver) and releases offered without any
 * network.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import type { ComponentConfig, Config } from '../../src/config/index.js';
import type { Journal } from '../../src/journal/journal.js';
import type { Engine } from '../../src/engine/engine.js';
import { FaultPoints } from '../../src/engine/faults.js';
import type { ReleaseSource } from '../../src/releases/discovery.js';
import { z } from 'zod';
import { readVersionFile } from '../../src/core/version-file.js';
import type { ComponentKind } from '../../src/kinds/kind.js';
import { createCore, type Core, type CoreOptions } from '../../src/main.js';
import { DirDriver, makeTree } from './dir-driver.js';

export function tempDir(prefix = 'updater-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A whole configuration with the defaults of the config schema, for a core built by a test. */
export function testConfig(given: Pick<Config, 'dataDir' | 'components'> & Partial<Config>): Config {
  return {
    server: { host: '127.0.0.1', port: 0, token: null, allowedHosts: [], allowedOrigins: [] },
    backupDir: join(given.dataDir, 'backups'),
    backupRetention: 3,
    checkIntervalHours: 0,
    includePrerelease: false,
    github: { apiUrl: 'https://api.github.invalid', rawUrl: 'https://raw.github.invalid', token: null },
    manifest: { remoteComponent: 'remote' },
    ...given,
  };
}

export const testLogger = () => pino({ level: process.env.TEST_LOG ?? 'silent' });

/** Offers 1.1.0 and 1.2.0 of `o/dir` without any network. */
export const stubSource: ReleaseSource = {
  async listReleases() {
    const rel = (tag: string) => ({ tag, name: tag, notes: `notes ${tag}`, url: `https://example.invalid/o/dir/releases/tag/${tag}`, draft: false, prerelease: false, publishedAt: null, assets: [] });
    return { value: [rel('v1.2.0'), rel('v1.1.0')], stale: false, reason: null, fetchedAt: new Date().toISOString() };
  },
  async releaseByVersion() {
    return null;
  },
  async fetchRaw() {
    return null;
  },
};

/** The component `dir` of the test kind `dir`: installed in `<root>/live`. */
export function dirComponent(root: string): ComponentConfig {
  return { name: 'dir', kind: 'dir', repo: 'o/dir', installPath: join(root, 'live'), minFreeMB: 0 } as unknown as ComponentConfig;
}

/** The test kind `dir`: its version is `live/VERSION`; its runs are driven by a DirDriver (openHarness). */
export function dirKind(driver: DirDriver): ComponentKind {
  return {
    kind: 'dir',
    configSchema: z.strictObject({ kind: z.literal('dir'), name: z.string(), repo: z.string(), installPath: z.string(), minFreeMB: z.number() }),
    readInstalled: () => readVersionFile(driver.live),
    createDriver: () => {
      throw new Error('the dir kind is driven by its DirDriver, through createCore({drivers})');
    },
  };
}

export interface Harness {
  root: string;
  dbPath: string;
  core: Core;
  journal: Journal;
  driver: DirDriver;
  engine: Engine;
  close(): void;
}

/** A root with live/ at 1.0.0 and releases 1.1.0 (good) and 1.2.0 (broken). */
export function seedRoot(root: string): void {
  makeTree(join(root, 'live'), '1.0.0');
  makeTree(join(root, 'releases', '1.0.0'), '1.0.0');
  makeTree(join(root, 'releases', '1.1.0'), '1.1.0', { 'd.txt': 'new file in 1.1.0\n' });
  makeTree(join(root, 'releases', '1.2.0'), '1.2.0', { BROKEN: 'yes' });
}

export function openHarness(root: string, options: NonNullable<CoreOptions['engine']> & { stepDelayMs?: number; source?: ReleaseSource; logger?: Logger } = {}): Harness {
  const { stepDelayMs = 0, source = stubSource, logger = testLogger(), ...engine } = options;
  const driver = new DirDriver(root, { stepDelayMs });
  const core = createCore({
    config: testConfig({ dataDir: root, components: [dirComponent(root)] }),
    kinds: [dirKind(driver)],
    drivers: () => ({ driverFor: () => driver, running: async () => null }),
    faults: new FaultPoints(process.env.UPDATER_FAULT),
    logger,
    releases: source,
    engine,
  });
  return {
    root,
    dbPath: join(root, 'updater.db'),
    core,
    journal: core.journal,
    driver,
    engine: core.engine,
    close: () => core.db.close(),
  };
}

/** A component of `openComponents`: its own DirDriver under `<root>/<name>/`, at 1.0.0, offered 1.1.0. */
export interface DirSpec {
  name: string;
  updateFirst?: boolean;
  /** Its 1.1.0 fails verify (the run ends rolled_back). */
  broken?: boolean;
}

/** Offers v1.1.0 (and v1.0.0) of every repo, without any network. */
export const offers110: ReleaseSource = {
  async listReleases(repo) {
    const rel = (tag: string) => ({ tag, name: tag, notes: `notes ${tag}`, url: `https://example.invalid/${repo}/releases/tag/${tag}`, draft: false, prerelease: false, publishedAt: null, assets: [] });
    return { value: [rel('v1.1.0'), rel('v1.0.0')], stale: false, reason: null, fetchedAt: new Date().toISOString() };
  },
  async releaseByVersion() {
    return null;
  },
  async fetchRaw() {
    return null;
  },
};

export interface ComponentsHarness {
  root: string;
  core: Core;
  drivers: Map<string, DirDriver>;
  /** What `<root>/<name>/live/VERSION` says. */
  installed(name: string): string;
  close(): Promise<void>;
}

/**
 * A real core (createCore, SQLite in `root`) with several components of the test kind `dirs`, in the
 * order given, each driven by a DirDriver of its own: live/ at 1.0.0, releases 1.0.0 and 1.1.0.
 */
export function openComponents(root: string, specs: DirSpec[], options: { stepDelayMs?: number; source?: ReleaseSource } = {}): ComponentsHarness {
  const drivers = new Map<string, DirDriver>();
  const components = specs.map((spec) => {
    const dir = join(root, spec.name);
    makeTree(join(dir, 'live'), '1.0.0');
    makeTree(join(dir, 'releases', '1.0.0'), '1.0.0');
    makeTree(join(dir, 'releases', '1.1.0'), '1.1.0', spec.broken ? { BROKEN: 'yes' } : {});
    drivers.set(spec.name, new DirDriver(dir, { stepDelayMs: options.stepDelayMs ?? 0 }));
    return { name: spec.name, kind: 'dirs', repo: `o/${spec.name}`, installPath: join(dir, 'live'), minFreeMB: 0, updateFirst: spec.updateFirst ?? false } as unknown as ComponentConfig;
  });
  const kind: ComponentKind = {
    kind: 'dirs',
    configSchema: z.strictObject({ kind: z.literal('dirs'), name: z.string(), repo: z.string(), installPath: z.string(), minFreeMB: z.number(), updateFirst: z.boolean() }),
    readInstalled: (c) => readVersionFile((c as unknown as { installPath: string }).installPath),
    createDriver: () => {
      throw new Error('the dirs kind is driven by DirDrivers, through createCore({drivers})');
    },
  };
  const core = createCore({
    config: testConfig({ dataDir: root, components }),
    kinds: [kind],
    drivers: () => ({ driverFor: (c) => drivers.get(c.name)!, running: async () => null }),
    logger: testLogger(),
    releases: options.source ?? offers110,
  });
  return {
    root,
    core,
    drivers,
    installed: (name) => readFileSync(join(root, name, 'live', 'VERSION'), 'utf8').trim(),
    close: () => core.close(),
  };
}

/**
 * Removes a test's temp dir. A core a test closed without `close()` (the harness closes only its
 * database) may still be writing logs/updates.log in the background: rm retries ENOTEMPTY.
 */
export function cleanup(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
}

/** `node --import <this>` runs TypeScript from any working directory. */
export const TSX_IMPORT = import.meta.resolve('tsx');

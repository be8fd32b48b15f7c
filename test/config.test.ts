import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import {
  ConfigError,
  configJsonSchema,
  ensureDirs,
  loadConfig,
  type LoadConfigOptions,
} from '../src/config/index.js';
import type { AppComponent } from '../src/kinds/app/index.js';
import type { ContainerComponent } from '../src/kinds/container/index.js';

const tempDirs: string[] = [];
after(() => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'updater-config-'));
  tempDirs.push(dir);
  return dir;
}

/** Writes `files` into a fresh temp dir and returns it. */
function setup(files: Record<string, string> = {}): string {
  const dir = tempDir();
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

/** The ConfigError's issues; fails when loading succeeds or throws anything else. */
function issuesOf(opts: LoadConfigOptions): string[] {
  try {
    loadConfig({ env: {}, ...opts });
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.issues;
  }
  assert.fail('expected loadConfig to throw');
}

function yamlIssues(yaml: string, env: NodeJS.ProcessEnv = {}): string[] {
  const dir = setup({ 'updater.yaml': yaml });
  return issuesOf({ cwd: dir, env });
}

const CONTRACT_EXAMPLE = `
server: { host: 127.0.0.1, port: 8080, token: null }   # token set => required on mutations and /ws
dataDir: ./data                  # updater.db lives here
backupDir: ./data/backups
backupRetention: 3               # newest N backups kept per component
checkIntervalHours: 24           # 0 disables the scheduler
includePrerelease: false
github: { apiUrl: https://api.github.com, rawUrl: https://raw.githubusercontent.com, token: null }
components:
  - name: scheduler
    kind: container
    repo: marco-svitol/dunebugger-scheduler
    composeFile: /opt/dunebugger/docker-compose.yml
    service: scheduler
    health: { url: http://127.0.0.1:8081/health, timeoutSeconds: 60 }   # optional
    minFreeMB: 500
  - name: core
    kind: app
    repo: marco-svitol/dunebugger
    installPath: /opt/dunebugger/core
    asset: "dunebugger-{version}.tar.gz"
    service: { manager: systemd, unit: dunebugger }
    health: { url: http://127.0.0.1:8080/health, timeoutSeconds: 60 }
    minFreeMB: 1000
`;

const SCHEDULER = `
  - name: scheduler
    kind: container
    repo: marco-svitol/dunebugger-scheduler
    composeFile: /opt/dunebugger/docker-compose.yml
    service: scheduler
`;

describe('loadConfig: sources and defaults', () => {
  test('no file: the embedded default with every default filled', () => {
    const cwd = setup();
    const { config, source } = loadConfig({ cwd, env: {} });
    assert.equal(source, 'embedded default');
    assert.deepEqual(config, {
      server: { host: '127.0.0.1', port: 8080, token: null, allowedHosts: [], allowedOrigins: [] },
      dataDir: path.join(cwd, 'data'),
      backupDir: path.join(cwd, 'data', 'backups'),
      backupRetention: 3,
      checkIntervalHours: 24,
      includePrerelease: false,
      github: { apiUrl: 'https://api.github.com', rawUrl: 'https://raw.githubusercontent.com', token: null },
      manifest: { remoteComponent: 'remote' },
      components: [],
    });
  });

  test('manifest.remoteComponent: default remote (which may name no component); set, it must name one', () => {
    const dir = setup({ 'updater.yaml': `components:${SCHEDULER}` });
    assert.deepEqual(loadConfig({ cwd: dir, env: {} }).config.manifest, { remoteComponent: 'remote' });
    const named = setup({ 'updater.yaml': `manifest: { remoteComponent: scheduler }\ncomponents:${SCHEDULER}` });
    assert.deepEqual(loadConfig({ cwd: named, env: {} }).config.manifest, { remoteComponent: 'scheduler' });
    assert.deepEqual(yamlIssues(`manifest: { remoteComponent: bridge }\ncomponents:${SCHEDULER}`), ['manifest.remoteComponent: names no configured component (configured: scheduler)']);
    assert.deepEqual(yamlIssues(`manifest: { remoteComponent: Bridge }\ncomponents:${SCHEDULER}`), [
      'manifest.remoteComponent: must be a component name: 1 to 63 characters of a-z, 0-9, "-" or "_", starting with a letter or digit',
    ]);
    assert.deepEqual(yamlIssues(`manifest: { remoteComponnt: scheduler }\ncomponents:${SCHEDULER}`), ['manifest.remoteComponnt: unknown key "remoteComponnt" (did you mean "remoteComponent"?)']);
    // From the environment, key by key, and checked the same way.
    const fromEnv = loadConfig({ cwd: dir, env: { UPDATER_MANIFEST__REMOTE_COMPONENT: 'scheduler' } }).config.manifest;
    assert.deepEqual(fromEnv, { remoteComponent: 'scheduler' });
    assert.deepEqual(issuesOf({ cwd: dir, env: { UPDATER_MANIFEST__REMOTE_COMPONENT: 'bridge' } }), [
      'manifest.remoteComponent (from UPDATER_MANIFEST__REMOTE_COMPONENT): names no configured component (configured: scheduler)',
    ]);
  });

  test("the contract's example loads as written", () => {
    const dir = setup({ 'conf/updater.yaml': CONTRACT_EXAMPLE });
    const file = path.join(dir, 'conf', 'updater.yaml');
    const { config, source } = loadConfig({ configPath: file, cwd: dir, env: {} });
    assert.equal(source, file);
    assert.equal(config.dataDir, path.join(dir, 'conf', 'data'));
    assert.equal(config.backupDir, path.join(dir, 'conf', 'data', 'backups'));
    assert.deepEqual(config.components[0], {
      name: 'scheduler',
      kind: 'container',
      repo: 'marco-svitol/dunebugger-scheduler',
      updateFirst: false,
      composeFile: '/opt/dunebugger/docker-compose.yml',
      service: 'scheduler',
      health: { url: 'http://127.0.0.1:8081/health', timeoutSeconds: 60 },
      minFreeMB: 500,
    } satisfies ContainerComponent);
    assert.deepEqual(config.components[1], {
      name: 'core',
      kind: 'app',
      repo: 'marco-svitol/dunebugger',
      updateFirst: false,
      installPath: '/opt/dunebugger/core',
      asset: 'dunebugger-{version}.tar.gz',
      service: { manager: 'systemd', unit: 'dunebugger', systemctl: ['systemctl'] },
      health: { url: 'http://127.0.0.1:8080/health', timeoutSeconds: 60 },
      minFreeMB: 1000,
      settleSeconds: 2,
      maxDownloadMB: 1024,
    } satisfies AppComponent);
  });

  test('./updater.yaml in the working directory is used when there is no --config', () => {
    const cwd = setup({ 'updater.yaml': 'checkIntervalHours: 6\n' });
    const { config, source } = loadConfig({ cwd, env: {} });
    assert.equal(source, path.join(cwd, 'updater.yaml'));
    assert.equal(config.checkIntervalHours, 6);
  });

  test('an empty file means every default', () => {
    const cwd = setup({ 'updater.yaml': '# nothing yet\n' });
    assert.equal(loadConfig({ cwd, env: {} }).config.backupRetention, 3);
  });

  test('component defaults: asset from the repo name, health timeout, minFreeMB, systemctl', () => {
    const { config } = loadConfig({
      cwd: setup({
        'updater.yaml': `
components:
  - { name: web, kind: app, repo: acme/web-ui, installPath: /srv/web, service: { manager: command, start: a, stop: b, status: c }, health: { url: "http://localhost/h" } }
  - { name: box, kind: app, repo: acme/box, installPath: /srv/box, service: { manager: systemd, unit: box, systemctl: [docker, exec, box, systemctl] } }
  - { name: db, kind: container, repo: acme/db, composeFile: /srv/compose.yml, service: db }
`,
      }),
      env: {},
    });
    const [web, box, db] = config.components as [AppComponent, AppComponent, ContainerComponent];
    assert.equal(web.asset, 'web-ui-{version}.tar.gz');
    assert.deepEqual(web.service, { manager: 'command', start: 'a', stop: 'b', status: 'c' });
    assert.deepEqual(web.health, { url: 'http://localhost/h', timeoutSeconds: 60 });
    assert.equal(web.minFreeMB, 1000);
    assert.equal(web.venv, undefined);
    assert.ok(!('venv' in web));
    assert.deepEqual(box.service, { manager: 'systemd', unit: 'box', systemctl: ['docker', 'exec', 'box', 'systemctl'] });
    assert.equal(db.minFreeMB, 500);
    assert.equal(db.health, undefined);
  });

  test('GitHub URLs lose a trailing slash', () => {
    const { config } = loadConfig({
      cwd: setup({ 'updater.yaml': 'github: { apiUrl: "http://127.0.0.1:9999/api/", rawUrl: "http://127.0.0.1:9999/raw//" }\n' }),
      env: {},
    });
    assert.equal(config.github.apiUrl, 'http://127.0.0.1:9999/api');
    assert.equal(config.github.rawUrl, 'http://127.0.0.1:9999/raw');
  });
});

test('preserve: a list of globs relative to installPath; a leading ./ is dropped; absent means none', () => {
  const { config } = loadConfig({
    cwd: setup({
      'updater.yaml': `
components:
  - { name: core, kind: app, repo: a/core, installPath: /srv/core, service: { manager: systemd, unit: core }, preserve: ["app/config/*.conf", "./data/**", "secrets/.env"] }
  - { name: web, kind: app, repo: a/web, installPath: /srv/web, service: { manager: systemd, unit: web } }
`,
    }),
    env: {},
  });
  const [core, web] = config.components as [AppComponent, AppComponent];
  assert.deepEqual(core.preserve, ['app/config/*.conf', 'data/**', 'secrets/.env']);
  assert.equal(web.preserve, undefined);
  assert.ok(!('preserve' in web));
});

describe('loadConfig: mistakes', () => {
  test('a container without composeFile, as the second component', () => {
    const issues = yamlIssues(`components:${SCHEDULER}
  - name: remote
    kind: container
    repo: marco-svitol/dunebugger-remote
    service: remote
`);
    assert.deepEqual(issues, ['components[1].composeFile: required for kind container']);
  });

  test('an app without installPath or service; a command manager without stop', () => {
    assert.deepEqual(yamlIssues('components:\n  - { name: core, kind: app, repo: a/b }\n'), [
      'components[0].installPath: required for kind app',
      'components[0].service: required for kind app',
    ]);
    assert.deepEqual(
      yamlIssues('components:\n  - { name: core, kind: app, repo: a/b, installPath: /x, service: { manager: command, start: a, status: c } }\n'),
      ['components[0].service.stop: required for manager command'],
    );
  });

  test('preserve: not a list, an empty glob, an absolute path, "..", a folder without a glob', () => {
    const app = (preserve: string) => `components:\n  - { name: core, kind: app, repo: a/b, installPath: /x, service: { manager: systemd, unit: u }, preserve: ${preserve} }\n`;
    assert.deepEqual(yamlIssues(app('"app/config/*.conf"')), ['components[0].preserve: expected a list of globs, like ["app/config/*.conf"], got "app/config/*.conf"']);
    assert.deepEqual(yamlIssues(app('["app/config/*.conf", ""]')), ['components[0].preserve[1]: must not be empty (expected a glob, like app/config/*.conf)']);
    assert.deepEqual(yamlIssues(app('["/etc/dunebugger.conf"]')), ['components[0].preserve[0]: must be relative to installPath, like app/config/*.conf; got the absolute "/etc/dunebugger.conf"']);
    assert.deepEqual(yamlIssues(app('["app/../../etc/*"]')), ['components[0].preserve[0]: must stay inside installPath: ".." is not allowed, got "app/../../etc/*"']);
    assert.deepEqual(yamlIssues(app('["app/config/", "."]')), [
      'components[0].preserve[0]: must match files, like app/config/*.conf (a whole folder is app/config/**); got "app/config/"',
      'components[0].preserve[1]: must match files, like app/config/*.conf (a whole folder is app/config/**); got "."',
    ]);
    assert.deepEqual(yamlIssues(app('[3]')), ['components[0].preserve[0]: expected a string, got 3']);
  });

  test('missing keys common to both kinds are just "required"', () => {
    assert.deepEqual(yamlIssues('components:\n  - { kind: container, composeFile: /c.yml, service: s }\n'), [
      'components[0].name: required',
      'components[0].repo: required',
    ]);
  });

  test('wrong types', () => {
    assert.deepEqual(yamlIssues('backupRetention: abc\nincludePrerelease: yes\ncomponents: {}\nserver: 8080\n'), [
      'server: expected a mapping, got 8080',
      'backupRetention: expected a number, got "abc"',
      'includePrerelease: expected true or false, got "yes"',
      'components: expected a list, got a mapping',
    ]);
    assert.deepEqual(yamlIssues('backupRetention: 0\ncheckIntervalHours: -2\ngithub: { token: 42 }\n'), [
      'backupRetention: expected an integer >= 1',
      'checkIntervalHours: expected a number >= 0',
      'github.token: expected a string or null, got 42',
    ]);
    assert.deepEqual(
      yamlIssues('components:\n  - { name: core, kind: app, repo: a/b, installPath: /x, service: dunebugger }\n'),
      [
        'components[0].service: expected a mapping like { manager: systemd, unit: NAME } or { manager: command, start: CMD, stop: CMD, status: CMD }, got "dunebugger"',
      ],
    );
  });

  test('unknown keys, with a hint for near misses', () => {
    assert.deepEqual(
      yamlIssues(`dataDr: ./x\nfoo: 1\ncomponents:
  - name: remote
    kind: container
    repo: marco-svitol/dunebugger-remote
    compseFile: /c.yml
    composeFile: /c.yml
    service: remote
`),
      [
        'components[0].compseFile: unknown key "compseFile" (did you mean "composeFile"?)',
        'dataDr: unknown key "dataDr" (did you mean "dataDir"?)',
        'foo: unknown key "foo"',
      ],
    );
    assert.deepEqual(yamlIssues('server: { host: x, prot: 1 }\n'), ['server.prot: unknown key "prot" (did you mean "port"?)']);
  });

  test('a bad or missing kind, a bad service manager', () => {
    assert.deepEqual(yamlIssues('components:\n  - { name: a, kind: contaner, repo: a/b }\n  - { name: b, repo: a/b }\n'), [
      'components[0].kind: must be one of container, app, self',
      'components[1].kind: required, one of container, app, self',
    ]);
    assert.deepEqual(yamlIssues('components:\n  - { name: a, kind: app, repo: a/b, installPath: /x, service: { manager: upstart } }\n'), [
      'components[0].service.manager: must be one of systemd, command',
    ]);
  });

  test('duplicate names are reported on the duplicate', () => {
    assert.deepEqual(yamlIssues(`components:${SCHEDULER}${SCHEDULER}`), [
      'components[1].name: duplicate component name "scheduler"',
    ]);
  });

  test('names that cannot be file names', () => {
    for (const name of ['Core', 'a/b', '../x', 'a.b', '-a', '']) {
      const issues = yamlIssues(`components:\n  - { name: ${JSON.stringify(name)}, kind: container, repo: a/b, composeFile: /c.yml, service: s }\n`);
      assert.equal(issues.length, 1, name);
      assert.match(issues[0] ?? '', /^components\[0\]\.name: must be 1 to 63 characters/);
    }
  });

  test('updateFirst: true or false on every kind, default false; all and manual_confirmation are not names', () => {
    const cwd = setup({
      'updater.yaml': `components:
  - { name: remote, kind: container, repo: a/remote, composeFile: /c.yml, service: remote, updateFirst: true }
  - { name: core, kind: app, repo: a/core, installPath: /x, service: { manager: systemd, unit: core } }
`,
    });
    const { config } = loadConfig({ cwd, env: {} });
    assert.deepEqual(config.components.map((c) => [c.name, c.updateFirst]), [['remote', true], ['core', false]]);
    assert.deepEqual(yamlIssues('components:\n  - { name: a, kind: app, repo: a/b, installPath: /x, service: { manager: systemd, unit: u }, updateFirst: yes }\n'), [
      'components[0].updateFirst: expected true or false, got "yes"',
    ]);
    for (const name of ['all', 'manual_confirmation']) {
      assert.deepEqual(yamlIssues(`components:\n  - { name: ${name}, kind: container, repo: a/b, composeFile: /c.yml, service: s }\n`), [
        `components[0].name: "${name}" is reserved (clients send it to mean every component); choose another name`,
      ]);
    }
  });

  test('a repo that is not owner/name', () => {
    for (const repo of ['dunebugger', 'a/b/c', 'https://github.com/a/b', '/b', 'a/', 'a/..']) {
      assert.deepEqual(
        yamlIssues(`components:\n  - { name: x, kind: container, repo: ${JSON.stringify(repo)}, composeFile: /c.yml, service: s }\n`),
        ['components[0].repo: must look like owner/name'],
        repo,
      );
    }
  });

  test('server.allowedHosts and server.allowedOrigins: lists of hosts and of origins, from the file or the environment', () => {
    const dir = setup({ 'updater.yaml': 'server: { allowedHosts: [dunebugger.local, "192.168.1.20:8080", "[fe80::1]"], allowedOrigins: ["https://console.example"] }\n' });
    const { config } = loadConfig({ cwd: dir, env: { UPDATER_SERVER__ALLOWED_ORIGINS: '[http://192.168.1.20:3000]' } });
    assert.deepEqual(config.server.allowedHosts, ['dunebugger.local', '192.168.1.20:8080', '[fe80::1]']);
    assert.deepEqual(config.server.allowedOrigins, ['http://192.168.1.20:3000']);
    assert.deepEqual(yamlIssues('server: { allowedHosts: ["http://dunebugger.local"] }\n'), [
      'server.allowedHosts[0]: expected a host name or address with an optional port (dunebugger.local, 192.168.1.20:8080, [fe80::1]), got "http://dunebugger.local"',
    ]);
    assert.deepEqual(yamlIssues('server: { allowedHosts: dunebugger.local }\n'), ['server.allowedHosts: expected a list of host names, got "dunebugger.local"']);
    for (const bad of ['null', '*', 'console.example', 'https://console.example/app', 'file:///x']) {
      assert.deepEqual(yamlIssues(`server: { allowedOrigins: ["${bad}"] }\n`), [
        `server.allowedOrigins[0]: expected an origin, scheme://host[:port] with no path (https://console.example), got "${bad}"`,
      ]);
    }
  });

  test('a bad port', () => {
    assert.deepEqual(yamlIssues('server: { port: 70000 }\n'), ['server.port: expected an integer between 0 and 65535, got 70000']);
    assert.deepEqual(yamlIssues('server: { port: 80.5 }\n'), ['server.port: expected an integer between 0 and 65535, got 80.5']);
    assert.deepEqual(yamlIssues('server: { port: abc }\n'), ['server.port: expected a number, got "abc"']);
  });

  test('a bad health URL', () => {
    assert.deepEqual(
      yamlIssues('components:\n  - { name: x, kind: container, repo: a/b, composeFile: /c.yml, service: s, health: { url: "ftp://h", timeoutSeconds: 0 } }\n'),
      ['components[0].health.url: must be an http:// or https:// URL', 'components[0].health.timeoutSeconds: expected a number > 0'],
    );
  });

  test('every issue is reported, not only the first', () => {
    const issues = yamlIssues(`server: { port: -1 }\nbackupRetention: x\ncomponents:${SCHEDULER}  - { name: scheduler, kind: app }\n`);
    assert.equal(issues.length, 6, issues.join('\n'));
  });

  test('YAML syntax errors name the line and column', () => {
    const issues = yamlIssues('server:\n  port: 1\ncomponents: [a, b\ndataDir: x\n');
    assert.equal(issues.length, 1);
    assert.match(issues[0] ?? '', /^YAML syntax error at line \d+, column \d+: /);
    assert.match(yamlIssues('a: 1\na: 2\n')[0] ?? '', /^YAML syntax error at line 2, column 1: Map keys must be unique/);
  });

  test('a top level that is not a mapping', () => {
    assert.deepEqual(yamlIssues('- name: core\n'), ['the top level must be a mapping of keys (server:, components:, ...), got a list']);
    assert.deepEqual(yamlIssues('just text\n'), ['the top level must be a mapping of keys (server:, components:, ...), got "just text"']);
  });

  test('a missing --config file', () => {
    const dir = setup();
    const file = path.join(dir, 'nope.yaml');
    assert.deepEqual(issuesOf({ configPath: file, cwd: dir }), [`cannot read ${file}: no such file or directory`]);
  });

  test('the message starts with the source and lists every issue', () => {
    const dir = setup({ 'updater.yaml': 'backupRetention: x\nfoo: 1\n' });
    assert.throws(
      () => loadConfig({ cwd: dir, env: {} }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.source, path.join(dir, 'updater.yaml'));
        assert.equal(err.exitCode, 2);
        assert.equal(
          err.message,
          `${path.join(dir, 'updater.yaml')}:\n  backupRetention: expected a number, got "x"\n  foo: unknown key "foo"`,
        );
        return true;
      },
    );
  });
});

describe('loadConfig: environment overrides', () => {
  test('UPDATER_DATA_DIR and UPDATER_DATADIR both set dataDir, relative to the working directory', () => {
    for (const variable of ['UPDATER_DATA_DIR', 'UPDATER_DATADIR', 'UPDATER_data_dir']) {
      const cwd = setup({ 'conf/updater.yaml': 'dataDir: ./file-data\n' });
      const { config } = loadConfig({ configPath: 'conf/updater.yaml', cwd, env: { [variable]: 'env-data' } });
      assert.equal(config.dataDir, path.join(cwd, 'env-data'), variable);
      assert.equal(config.backupDir, path.join(cwd, 'env-data', 'backups'), variable);
    }
  });

  test('values are YAML: numbers, booleans, flow mappings merged over the file', () => {
    const cwd = setup({ 'updater.yaml': 'server: { host: 0.0.0.0, port: 8080, token: secret }\ncheckIntervalHours: 12\n' });
    const { config } = loadConfig({
      cwd,
      env: {
        UPDATER_CHECK_INTERVAL_HOURS: '0',
        UPDATER_INCLUDE_PRERELEASE: 'true',
        UPDATER_SERVER: '{port: 9000}',
        UPDATER_GITHUB__TOKEN: '0123456789',
      },
    });
    assert.equal(config.checkIntervalHours, 0);
    assert.equal(config.includePrerelease, true);
    assert.deepEqual(config.server, { host: '0.0.0.0', port: 9000, token: 'secret', allowedHosts: [], allowedOrigins: [] });
    assert.equal(config.github.token, '0123456789');
  });

  test('UPDATER_SERVER__PORT sets server.port and wins over UPDATER_SERVER', () => {
    const { config } = loadConfig({ cwd: setup(), env: { UPDATER_SERVER__PORT: '9001', UPDATER_SERVER: '{port: 9000, host: ::1}' } });
    assert.equal(config.server.port, 9001);
    assert.equal(config.server.host, '::1');
    assert.equal(loadConfig({ cwd: setup(), env: { UPDATER_SERVER__TOKEN: 'null' } }).config.server.token, null);
  });

  test('ignored: UPDATER_FAULT, UPDATER_CONFIG, UPDATER_LOG_LEVEL, unknown keys, empty values', () => {
    const { config } = loadConfig({
      cwd: setup(),
      env: {
        UPDATER_FAULT: 'apply:crash',
        UPDATER_CONFIG: '/nope.yaml',
        UPDATER_LOG_LEVEL: 'debug',
        UPDATER_WHATEVER: '{',
        UPDATER_SERVER__TOKEN: '',
        OTHER_DATA_DIR: '/x',
      },
    });
    assert.equal(config.server.token, null);
    assert.equal(config.dataDir.endsWith(`${path.sep}data`), true);
  });

  test('errors name the variable', () => {
    const cwd = setup();
    assert.deepEqual(issuesOf({ cwd, env: { UPDATER_CHECK_INTERVAL_HOURS: '-1' } }), [
      'checkIntervalHours (from UPDATER_CHECK_INTERVAL_HOURS): expected a number >= 0',
    ]);
    assert.deepEqual(issuesOf({ cwd, env: { UPDATER_SERVER__PORT: 'abc' } }), [
      'server.port (from UPDATER_SERVER__PORT): expected a number, got "abc"',
    ]);
    assert.deepEqual(issuesOf({ cwd, env: { UPDATER_SERVER: '{port: 99999}' } }), [
      'server.port (from UPDATER_SERVER): expected an integer between 0 and 65535, got 99999',
    ]);
    assert.deepEqual(issuesOf({ cwd, env: { UPDATER_SERVER__PROT: '1' } }), [
      'server.prot (from UPDATER_SERVER__PROT): unknown key "prot" (did you mean "port"?)',
    ]);
    const [syntax] = issuesOf({ cwd, env: { UPDATER_SERVER: '{port: 9000' } });
    assert.match(syntax ?? '', /^server \(from UPDATER_SERVER\): not valid YAML: /);
    assert.deepEqual(issuesOf({ cwd, env: { UPDATER_DATA_DIR: 'a', UPDATER_DATADIR: 'b' } }), [
      'dataDir (from UPDATER_DATA_DIR): conflicts with UPDATER_DATADIR, which sets it differently',
    ]);
    assert.deepEqual(issuesOf({ cwd, env: { UPDATER_DATA_DIR__X: 'a' } }), [
      'dataDir (from UPDATER_DATA_DIR__X): has no keys that can be set one by one',
    ]);
  });

  test('UPDATER_COMPONENTS replaces the list; its paths are relative to the working directory', () => {
    const cwd = setup({ 'conf/updater.yaml': `components:${SCHEDULER}` });
    const { config } = loadConfig({
      configPath: 'conf/updater.yaml',
      cwd,
      env: { UPDATER_COMPONENTS: '[{name: web, kind: container, repo: a/web, composeFile: compose.yml, service: web}]' },
    });
    assert.deepEqual(
      config.components.map((c) => [c.name, (c as ContainerComponent).composeFile]),
      [['web', path.join(cwd, 'compose.yml')]],
    );
  });
});

describe('loadConfig: dunebugger.conf', () => {
  const FULL_INI = `[General]
foo = bar

[Updater]
updateCheckIntervalHours = 6
dockerComposePath = /srv/dune/docker-compose.yml
coreInstallPath = /srv/dune/core
backupPath = /srv/dune/backups
githubAccount = someone
includePrerelease = Yes
otherKey = ignored
`;

  test('every [Updater] key maps into the model', () => {
    const cwd = setup({ 'dunebugger.conf': FULL_INI });
    const { config, source } = loadConfig({ iniPath: 'dunebugger.conf', cwd, env: {} });
    assert.equal(source, path.join(cwd, 'dunebugger.conf'));
    assert.equal(config.checkIntervalHours, 6);
    assert.equal(config.backupDir, '/srv/dune/backups');
    assert.equal(config.includePrerelease, true);
    assert.equal(config.dataDir, path.join(cwd, 'data'));
    assert.deepEqual(config.components, [
      {
        name: 'core',
        kind: 'app',
        repo: 'someone/dunebugger',
        updateFirst: false,
        installPath: '/srv/dune/core',
        asset: 'dunebugger-{version}.tar.gz',
        service: { manager: 'systemd', unit: 'dunebugger', systemctl: ['systemctl'] },
        minFreeMB: 1000,
        settleSeconds: 2,
        maxDownloadMB: 1024,
        preserve: ['app/config/*.conf'],
      },
      {
        name: 'scheduler',
        kind: 'container',
        repo: 'someone/dunebugger-scheduler',
        updateFirst: false,
        composeFile: '/srv/dune/docker-compose.yml',
        service: 'scheduler',
        minFreeMB: 500,
      },
      {
        name: 'remote',
        kind: 'container',
        repo: 'someone/dunebugger-remote',
        updateFirst: false,
        composeFile: '/srv/dune/docker-compose.yml',
        service: 'remote',
        minFreeMB: 500,
      },
    ]);
  });

  test('an empty [Updater] section takes the seed defaults', () => {
    const cwd = setup({ 'dunebugger.conf': '[Updater]\n' });
    const { config } = loadConfig({ iniPath: path.join(cwd, 'dunebugger.conf'), cwd, env: {} });
    assert.equal(config.checkIntervalHours, 24);
    assert.equal(config.includePrerelease, false);
    assert.equal(config.backupDir, '/opt/dunebugger/backups');
    const [core, scheduler, remote] = config.components as [AppComponent, ContainerComponent, ContainerComponent];
    assert.equal(core.repo, 'marco-svitol/dunebugger');
    assert.equal(core.installPath, '/opt/dunebugger/core');
    assert.equal(scheduler.repo, 'marco-svitol/dunebugger-scheduler');
    assert.equal(scheduler.composeFile, '/opt/dunebugger/docker-compose.yml');
    assert.equal(remote.repo, 'marco-svitol/dunebugger-remote');
    assert.equal(remote.service, 'remote');
  });

  test('includePrerelease accepts true/false/yes/no/1/0 in any case', () => {
    for (const [text, expected] of [['TRUE', true], ['no', false], ['1', true], ['0', false], ['False', false], ['yes', true]] as const) {
      const cwd = setup({ 'd.conf': `[Updater]\nincludePrerelease = ${text}\n` });
      assert.equal(loadConfig({ iniPath: 'd.conf', cwd, env: {} }).config.includePrerelease, expected, text);
    }
  });

  test('a missing [Updater] section, bad values', () => {
    const cwd = setup({
      'none.conf': '[General]\nfoo = 1\n',
      'bad.conf': '[Updater]\nupdateCheckIntervalHours = daily\nincludePrerelease = maybe\n',
      'account.conf': '[Updater]\ngithubAccount = a/b\n',
    });
    assert.deepEqual(issuesOf({ iniPath: 'none.conf', cwd }), [`${path.join(cwd, 'none.conf')}: no [Updater] section`]);
    assert.deepEqual(issuesOf({ iniPath: 'bad.conf', cwd }), [
      'checkIntervalHours (from [Updater] updateCheckIntervalHours): expected a number, got "daily"',
      'includePrerelease (from [Updater] includePrerelease): expected true or false, got "maybe"',
    ]);
    assert.deepEqual(issuesOf({ iniPath: 'account.conf', cwd }), [
      '[Updater] githubAccount: must be a GitHub account name (letters, digits and "-"), got "a/b"',
    ]);
    const missing = path.join(cwd, 'missing.conf');
    assert.deepEqual(issuesOf({ iniPath: missing, cwd }), [`cannot read ${missing}: no such file or directory`]);
  });

  test('with a YAML file: ini overrides top-level keys, YAML components win', () => {
    const cwd = setup({
      'updater.yaml': `checkIntervalHours: 1\nbackupRetention: 5\ncomponents:${SCHEDULER}`,
      'dunebugger.conf': FULL_INI,
    });
    const { config, source } = loadConfig({ iniPath: 'dunebugger.conf', cwd, env: {} });
    assert.equal(source, `${path.join(cwd, 'updater.yaml')} + ${path.join(cwd, 'dunebugger.conf')}`);
    assert.equal(config.checkIntervalHours, 6);
    assert.equal(config.backupRetention, 5);
    assert.equal(config.backupDir, '/srv/dune/backups');
    assert.deepEqual(
      config.components.map((c) => c.repo),
      ['marco-svitol/dunebugger-scheduler'],
    );
  });

  test('with a YAML file without components: the ini supplies them; env still overrides the ini', () => {
    const cwd = setup({ 'updater.yaml': 'backupRetention: 2\n', 'dunebugger.conf': FULL_INI });
    const { config } = loadConfig({ iniPath: 'dunebugger.conf', cwd, env: { UPDATER_CHECK_INTERVAL_HOURS: '0' } });
    assert.deepEqual(
      config.components.map((c) => c.name),
      ['core', 'scheduler', 'remote'],
    );
    assert.equal(config.checkIntervalHours, 0);
  });

  test('relative ini paths are taken from the ini file directory', () => {
    const cwd = setup({ 'etc/dunebugger.conf': '[Updater]\ncoreInstallPath = ../core\nbackupPath = backups\n' });
    const { config } = loadConfig({ iniPath: 'etc/dunebugger.conf', cwd, env: {} });
    assert.equal((config.components[0] as AppComponent).installPath, path.join(cwd, 'core'));
    assert.equal(config.backupDir, path.join(cwd, 'etc', 'backups'));
  });
});

describe('paths and directories', () => {
  test('relative paths are resolved against the YAML file directory', () => {
    const cwd = setup({
      'conf/updater.yaml': `dataDir: state
backupDir: ../backups
components:
  - { name: web, kind: container, repo: a/web, composeFile: ./compose/docker-compose.yml, service: web }
  - { name: core, kind: app, repo: a/core, installPath: apps/core, venv: apps/venv, service: { manager: systemd, unit: core } }
  - { name: abs, kind: app, repo: a/abs, installPath: /srv/abs, service: { manager: systemd, unit: abs } }
`,
    });
    const conf = path.join(cwd, 'conf');
    const { config } = loadConfig({ configPath: path.join(conf, 'updater.yaml'), cwd: '/', env: {} });
    assert.equal(config.dataDir, path.join(conf, 'state'));
    assert.equal(config.backupDir, path.join(cwd, 'backups'));
    const [web, core, abs] = config.components as [ContainerComponent, AppComponent, AppComponent];
    assert.equal(web.composeFile, path.join(conf, 'compose', 'docker-compose.yml'));
    assert.equal(core.installPath, path.join(conf, 'apps', 'core'));
    assert.equal(core.venv, path.join(conf, 'apps', 'venv'));
    assert.equal(abs.installPath, '/srv/abs');
  });

  test('loading writes nothing; ensureDirs creates dataDir and backupDir', () => {
    const cwd = setup({ 'updater.yaml': 'dataDir: ./deep/data\n' });
    const { config } = loadConfig({ cwd, env: {} });
    assert.deepEqual(readdirSync(cwd), ['updater.yaml']);
    assert.equal(existsSync(config.dataDir), false);
    const empty = setup();
    loadConfig({ cwd: empty, env: {} }); // the embedded default: ./data is not created either
    assert.deepEqual(readdirSync(empty), []);
    ensureDirs(config);
    assert.equal(existsSync(config.dataDir), true);
    assert.equal(existsSync(path.join(cwd, 'deep', 'data', 'backups')), true);
    ensureDirs(config); // idempotent
  });

  test('ensureDirs reports a directory it cannot create', () => {
    const cwd = setup({ blocker: 'a file' });
    assert.throws(
      () => ensureDirs({ dataDir: path.join(cwd, 'blocker', 'data'), backupDir: path.join(cwd, 'blocker', 'b') }),
      (err: unknown) => err instanceof ConfigError && /^dataDir: cannot create /.test(err.issues[0] ?? ''),
    );
  });
});

test('configJsonSchema describes the input', () => {
  const schema = configJsonSchema() as { type: string; additionalProperties: boolean; properties: Record<string, unknown> };
  assert.equal(schema.type, 'object');
  assert.equal(schema.additionalProperties, false);
  assert.deepEqual(Object.keys(schema.properties).sort(), [
    'backupDir',
    'backupRetention',
    'checkIntervalHours',
    'components',
    'dataDir',
    'github',
    'includePrerelease',
    'manifest',
    'nats',
    'server',
    'webpubsub',
  ]);
});

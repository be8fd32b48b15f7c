/**
 * The dashboard in a real Chromium (Debian's, driven by playwright-core), on the real service
 * (`updater serve` with no config: the embedded demo) as a user runs it: update to 1.1.0 and see
 * every phase arrive live; update to 1.2.0 and see it rolled back with the failing check named;
 * a dry run and a rollback from the buttons; SIGKILL the service during a run, restart it, see
 * the page reconnect and the recovered run finish, and again after a reload. Screenshots of each
 * end state go to docs/ (DASHBOARD_SCREENSHOTS=dir to put them elsewhere).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { chromiumSkip, launchChromium } from './support/chromium.js';
import { cleanup, tempDir } from './support/harness.js';
import { LAUNCHER } from './support/built.js';
import { apiWorld } from './support/api-harness.js';

const ROOT = join(import.meta.dirname, '..');
const SHOTS = process.env.DASHBOARD_SCREENSHOTS ?? join(ROOT, 'docs');

const skip = chromiumSkip;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** `updater serve` as a child process in `dir`, always on the same port (so the page can reconnect to it). */
class Service {
  child: ChildProcess | null = null;
  log = '';

  constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const child = spawn(LAUNCHER, ['serve'], {
      cwd: this.dir,
      env: { ...process.env, UPDATER_SERVER__PORT: String(this.port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the service did not listen within 30 s:\n${out}`)), 30_000);
      const onData = (b: Buffer) => {
        out += b;
        this.log += b;
        if (out.includes(`"url":"${this.url}"`)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the service exited (${code ?? signal}) before listening:\n${out}`));
      });
    });
  }

  async stop(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
    this.child = null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The demo app's pid, if its pid file names a live process. */
function demoAppPid(dir: string): number | null {
  const file = join(dir, 'data', 'demo', 'app.pid');
  if (!existsSync(file)) return null;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : null;
}

const timeline = '[data-testid=timeline]';
const row = (state: string) => `${timeline} [data-testid=timeline-row][data-state=${state}]`;
const card = '[data-testid=component-sample-app]';

// Code run in the page is given as text: this project's tsconfig has no DOM types.

/** Records, in the page, every timeline row as it is added: [seq, state, ms since recording began]. */
const RECORD_ROWS = `(() => {
  const seen = [];
  const t0 = performance.now();
  window.__rows = seen;
  new MutationObserver((records) => {
    for (const r of records) {
      for (const n of r.addedNodes) {
        if (!(n instanceof HTMLElement) || n.dataset.testid !== 'timeline-row') continue;
        const seq = Number(n.dataset.seq);
        if (!seen.some(([s]) => s === seq)) seen.push([seq, n.dataset.state, performance.now() - t0]);
      }
    }
  }).observe(document.querySelector('[data-testid=timeline]'), { childList: true });
})()`;
const recorded = (page: Page) => page.evaluate<Array<[number, string, number]>>('window.__rows');

async function text(page: Page, selector: string): Promise<string> {
  return ((await page.locator(selector).first().textContent()) ?? '').replace(/\s+/g, ' ').trim();
}

async function shot(page: Page, name: string, fullPage = true): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.evaluate('document.activeElement?.blur()'); // no focus ring in the picture
  await page.screenshot({ path: join(SHOTS, name), fullPage, animations: 'disabled', caret: 'hide' });
}

it('serves the page, its style and its bundled script from the service, with ETags (no browser needed)', async () => {
  const w = await apiWorld();
  try {
    const page = await w.app.inject('/');
    assert.equal(page.statusCode, 200);
    assert.match(page.headers['content-type'] as string, /^text\/html/);
    assert.match(page.headers['content-security-policy'] as string, /default-src 'self'/);
    assert.match(page.body, /<script type="module" src="\/dashboard\/app\.js">/);
    assert.doesNotMatch(page.body, /https?:\/\/(?!127\.0\.0\.1)/, 'nothing from elsewhere');
    const script = await w.app.inject('/dashboard/app.js');
    assert.equal(script.statusCode, 200);
    assert.match(script.headers['content-type'] as string, /^text\/javascript/);
    assert.match(script.body, /updater\.subscribe/, 'the TypeScript client, bundled');
    const etag = script.headers.etag as string;
    assert.match(etag, /^"[\w-]+"$/);
    const again = await w.app.inject({ url: '/dashboard/app.js', headers: { 'if-none-match': etag } });
    assert.equal(again.statusCode, 304);
    assert.equal(again.body, '');
    const style = await w.app.inject('/dashboard/style.css');
    assert.equal(style.statusCode, 200);
    assert.match(style.headers['content-type'] as string, /^text\/css/);
    const doc = (await w.app.inject('/openapi.json')).json<{ paths: Record<string, unknown> }>();
    assert.equal(doc.paths['/dashboard/app.js'], undefined, 'not part of the API description');
  } finally {
    await w.close();
  }
});

describe('dashboard in Chromium, on the demo', { skip, timeout: 240_000 }, () => {
  let dir = '';
  let service: Service;
  let browser: Browser | undefined;
  let context: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];

  before(async () => {
    dir = tempDir('updater-dashboard-');
    // The demo remembers its own ports here (default 18090/18089): free ones, so a developer's demo is left alone.
    mkdirSync(join(dir, 'data', 'demo'), { recursive: true });
    writeFileSync(join(dir, 'data', 'demo', 'app.port'), `${await freePort()}\n`);
    writeFileSync(join(dir, 'data', 'demo', 'releases.port'), `${await freePort()}\n`);
    service = new Service(dir, await freePort());
    await service.start();
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light', reducedMotion: 'reduce' });
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('dialog', (d) => void d.accept()); // the rollback button asks first
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await service?.stop('SIGTERM');
    if (dir) {
      // The service stops the demo app on SIGTERM; anything still running is a leak, and is ended here.
      const leftover = demoAppPid(dir);
      if (leftover !== null) process.kill(leftover, 'SIGKILL');
      cleanup(dir);
      assert.equal(leftover, null, 'the demo app was left running after the service stopped');
    }
  });

  it('serves the page and its assets (no CDN), and shows the demo component', async () => {
    const res = await fetch(`${service.url}/dashboard/app.js`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /javascript/);
    const etag = res.headers.get('etag');
    assert.ok(etag);
    assert.equal((await fetch(`${service.url}/dashboard/app.js`, { headers: { 'if-none-match': etag } })).status, 304);

    const outside: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(service.url) && !r.url().startsWith(service.url.replace('http', 'ws')) && !r.url().startsWith('data:')) outside.push(r.url());
    });
    await page.goto(service.url);
    await page.locator('[data-testid=conn][data-state=connected]').waitFor();
    await page.locator(`${card} [data-testid=latest]:text-is("1.2.0")`).waitFor();
    assert.equal(await text(page, `${card} [data-testid=installed]`), '1.0.0');
    assert.ok(await page.locator(`${card} [data-testid=update-available]`).isVisible());
    await page.locator(`${card} [data-testid=release-notes] summary`).click();
    assert.match(await text(page, `${card} [data-testid=release-notes]`), /A new cache/);
    assert.deepEqual(outside, [], 'the page must not load anything from elsewhere');
  });

  it('updates to a chosen version (1.1.0) and shows every phase live, ending "Updated sample-app to 1.1.0"', async () => {
    await page.evaluate(RECORD_ROWS);
    const version = page.locator(`${card} [data-testid=version-input]`);
    await version.fill('1.1.0');
    const update = page.locator(`${card} [data-testid=update]`);
    assert.equal(await update.textContent(), 'Update to 1.1.0');
    await version.press('Enter'); // the keyboard way: Enter in the version field is Update
    // While verify runs (the demo waits 3 s for the app to settle), the run is not over yet: the rows come live.
    await page.locator(row('verify')).waitFor();
    assert.equal(await page.locator(row('succeeded')).count(), 0);
    assert.ok(await update.isDisabled(), 'the buttons are disabled while a run is active');
    await page.locator(row('succeeded')).waitFor({ timeout: 30_000 });
    assert.match(await text(page, row('succeeded')), /Updated sample-app to 1\.1\.0/);

    const rows = await recorded(page);
    assert.deepEqual(rows.map(([, state]) => state), ['discover', 'validate', 'backup', 'apply', 'verify', 'succeeded']);
    const at = Object.fromEntries(rows.map(([, state, ms]) => [state, ms]));
    assert.ok(at.succeeded! - at.verify! > 2000, `verify and succeeded must arrive apart (live), not at once: ${JSON.stringify(rows)}`);
    for (const state of ['discover', 'validate', 'backup', 'apply', 'verify', 'succeeded']) {
      assert.match(await text(page, `${row(state)} time`), /^\d\d:\d\d:\d\d$/, `${state} shows its time`);
    }
    assert.equal(await text(page, '[data-testid=run-state]'), 'succeeded');
    await page.locator(`${card} [data-testid=installed]:text-is("1.1.0")`).waitFor();
    await page.locator(`${card} [data-testid=version-input]`).fill('');
    await page.locator('[data-testid=history-item][data-run="1"]').waitFor();
    await page.locator('[data-testid=progress]').first().waitFor();
    await shot(page, 'dashboard-succeeded.png');
  });

  it('updates to the latest (1.2.0), sees it rolled back, and the banner names the failing check', async () => {
    const update = page.locator(`${card} [data-testid=update]`);
    await page.locator(`${card} [data-testid=update]:not([disabled])`).waitFor();
    assert.equal(await update.textContent(), 'Update to 1.2.0');
    await update.click();
    await page.locator(row('rollback')).waitFor({ timeout: 30_000 });
    const banner = page.locator('[data-testid=banner][data-state=rolled_back]');
    await banner.waitFor({ timeout: 30_000 });
    assert.match(await text(page, '[data-testid=banner]'), /rolled back/i);
    assert.match(await text(page, '[data-testid=banner-message]'), /health URL http:\/\/127\.0\.0\.1:\d+\/health answered 500/);
    assert.match(await text(page, row('rolled_back')), /rolled back to v1\.1\.0/);
    assert.equal(await text(page, `${card} [data-testid=installed]`), '1.1.0');
    await page.locator('[data-testid=history-item][data-run="2"] [data-testid=history-state]:text-is("rolled back")').waitFor();
    await shot(page, 'dashboard-rolled-back.png');
  });

  it('runs a dry run and a rollback from the buttons, and shows past runs with their transitions', async () => {
    await page.locator(`${card} [data-testid=dry-run]:not([disabled])`).click();
    await page.locator(row('validated')).waitFor({ timeout: 30_000 });
    assert.match(await text(page, row('validated')), /Dry run: sample-app can be updated from 1\.1\.0 to 1\.2\.0; nothing was changed/);
    assert.equal(await page.locator('[data-testid=banner]:visible').count(), 0, 'a new run clears the old banner');

    await page.locator(`${card} [data-testid=rollback]:not([disabled])`).click();
    await page.locator('[data-testid=run-title]:has-text("restore from backup")').waitFor();
    await page.locator(row('rolled_back')).waitFor({ timeout: 30_000 });
    assert.match(await text(page, row('rolled_back')), /Restored sample-app to v1\.1\.0 from backup/);
    assert.equal(await page.locator('[data-testid=banner]:visible').count(), 0, 'a restore asked for is not a failure');

    const first = page.locator('[data-testid=history-item][data-run="1"]');
    await first.locator('summary').click();
    await first.locator('[data-testid=timeline-row][data-state=succeeded]').waitFor();
    assert.equal(await first.locator('[data-testid=timeline-row]').count(), 6);
  });

  it('updates all from the button: disabled while the run goes on, the end told in the notice; a refusal shown as for the other buttons', async () => {
    const all = page.locator('[data-testid=update-all]');
    await page.locator('[data-testid=update-all]:not([disabled])').waitFor();
    const previous = (await page.locator(timeline).getAttribute('data-run')) ?? '';
    await all.click();
    // The only component with an update is sample-app, whose latest (1.2.0) fails its health check.
    // This run's verify, not the previous run's, which the timeline shows until this one appears.
    await page.locator(`${timeline}:not([data-run="${previous}"]) [data-testid=timeline-row][data-state=verify]`).waitFor({ timeout: 30_000 });
    assert.ok(await all.isDisabled(), 'Update all is disabled while a run is active');
    // The versions come with the run's first fetch, 250 ms after its first message: on a quick
    // machine the run is in verify before that answer is in.
    await page.locator('[data-testid=run-title]', { hasText: /sample-app · update · 1\.1\.0 → 1\.2\.0/ }).waitFor({ timeout: 5000 });
    const ended = page.locator('[data-testid=notice]:has-text("Update all: Stopped at sample-app")');
    await ended.waitFor({ timeout: 40_000 });
    assert.equal(await text(page, '[data-testid=notice]'), 'Update all: Stopped at sample-app (rolled back)');
    await page.locator(row('rolled_back')).waitFor();
    await page.locator('[data-testid=update-all]:not([disabled])').waitFor();

    // A refusal: the server's answer is shown (here a stand-in for its 409, so that nothing else has to run).
    await page.route('**/api/updates', (route) =>
      route.fulfill({ status: 409, contentType: 'application/json', body: JSON.stringify({ error: { code: 'busy', message: 'another update is running: run 9 of sample-app is in apply' } }) }),
    );
    try {
      await all.click();
      await page.locator('[data-testid=notice]:has-text("Update all did not start: another update is running: run 9 of sample-app is in apply")').waitFor();
    } finally {
      await page.unroute('**/api/updates');
    }

    // With no update anywhere it is disabled (the component list as if a check found none).
    const other = await context.newPage();
    try {
      await other.route('**/api/components', async (route) => {
        const response = await route.fetch();
        const list = (await response.json()) as Array<Record<string, unknown>>;
        await route.fulfill({ response, json: list.map((c) => ({ ...c, update_available: false })) });
      });
      await other.goto(service.url);
      await other.locator(`${card} [data-testid=installed]:text-is("1.1.0")`).waitFor();
      assert.ok(await other.locator('[data-testid=update-all]').isDisabled(), 'nothing to update: disabled');
      assert.ok(!(await other.locator(`${card} [data-testid=update]`).isDisabled()), 'while the other buttons are not');
    } finally {
      await other.close();
    }
  });

  it('survives a SIGKILL of the service during a run: reconnects, replays, and shows the recovered run finish', async () => {
    // The timeline still shows the run before this one (which went through verify too): wait for
    // this run's verify, not that one's, so that the SIGKILL lands in verify on a slow machine too.
    const previous = (await page.locator(timeline).getAttribute('data-run')) ?? '';
    await page.locator(`${card} [data-testid=update]:not([disabled])`).click();
    await page.locator(`${timeline}:not([data-run="${previous}"]) [data-testid=timeline-row][data-state=verify]`).waitFor({ timeout: 30_000 });
    const runId = Number(await page.locator(`${timeline}`).getAttribute('data-run'));
    await service.stop('SIGKILL');
    await page.locator('[data-testid=conn][data-state=reconnecting]').waitFor({ timeout: 10_000 });
    assert.ok(await page.locator(`${card} [data-testid=update]`).isDisabled(), 'the run is not over: no new one may start');

    await service.start(); // same port: recovery verifies again, fails the health check, rolls back
    await page.locator('[data-testid=conn][data-state=connected]').waitFor({ timeout: 20_000 });
    await page.locator(`${timeline} [data-testid=timeline-row][data-event=recover]`).waitFor({ timeout: 30_000 });
    await page.locator(row('rolled_back')).waitFor({ timeout: 40_000 });
    assert.equal(Number(await page.locator(timeline).getAttribute('data-run')), runId, 'the same run, recovered');

    await page.reload();
    await page.locator('[data-testid=conn][data-state=connected]').waitFor();
    await page.locator(row('rolled_back')).waitFor();
    const states: string[] = [];
    for (const el of await page.locator(`${timeline} [data-testid=timeline-row]`).all()) states.push(`${await el.getAttribute('data-event')}:${await el.getAttribute('data-state')}`);
    assert.ok(states.includes('recover:verify'), `a recover transition back into verify: ${states.join(' ')}`);
    assert.equal(states.at(-1), 'rollback.done:rolled_back');
    assert.match(await text(page, '[data-testid=banner-message]'), /answered 500/);
    assert.match(await text(page, `${timeline} [data-testid=recovered]`), /recovered after a restart/);
    assert.equal(await text(page, `${card} [data-testid=installed]`), '1.1.0');
    await shot(page, 'dashboard-recovered.png');
  });

  it('is readable on a phone-sized screen', async () => {
    const phone = await browser!.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, colorScheme: 'light', reducedMotion: 'reduce' });
    try {
      const small = await phone.newPage();
      await small.goto(service.url);
      await small.locator('[data-testid=conn][data-state=connected]').waitFor();
      await small.locator(row('rolled_back')).waitFor();
      const overflow = await small.evaluate<number>('document.documentElement.scrollWidth - document.documentElement.clientWidth');
      assert.ok(overflow <= 0, `no horizontal scrolling on a phone (overflow ${overflow}px)`);
      await shot(small, 'dashboard-phone.png', false);
    } finally {
      await phone.close();
    }
    assert.deepEqual(pageErrors, [], 'no script errors in the page');
  });
});

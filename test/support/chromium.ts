/**
 * Debian's Chromium for the browser tests, driven by playwright-core (which cannot download a
 * browser here). Skipped where it is missing, except under CI=true, where that is a failure.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
const missing = !existsSync(CHROMIUM);
export const chromiumSkip: string | false = missing && process.env.CI !== 'true' ? `no Chromium at ${CHROMIUM} (test/env/install.sh installs it as root)` : false;

/** Without the resolver rules Chromium still sends DNS queries off the machine; `map` adds names of our own first. */
export function launchChromium(map: string[] = []): Promise<Browser> {
  if (missing) assert.fail(`CI=true and there is no Chromium at ${CHROMIUM}: test/env/install.sh installs it`);
  const rules = [...map, 'MAP * ~NOTFOUND', 'EXCLUDE 127.0.0.1', 'EXCLUDE localhost'].join(' , ');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', `--host-resolver-rules=${rules}`],
  });
}

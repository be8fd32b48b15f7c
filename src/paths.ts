/**
 * Where the updater's own files are: the package root holds package.json and migrations/,
 * whether this code runs from src/ (through tsx) or from the build in dist/ (one bundle, whose
 * modules all sit at one depth). Found by walking up from this module, so both layouts, and a
 * copy of either under any prefix (/opt/dune-updater, the image's /app), resolve the same.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findPackageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'migrations'))) return dir;
    if (dirname(dir) === dir) throw new Error(`the updater's package root (package.json and migrations/) is not above ${from}`);
  }
}

export const PACKAGE_ROOT = findPackageRoot(dirname(fileURLToPath(import.meta.url)));

/** True in the build (`npm run build` defines it); false when the sources run through tsx. */
export const BUNDLED: boolean = typeof __UPDATER_BUNDLE__ !== 'undefined' && __UPDATER_BUNDLE__;

declare global {
  // Replaced by esbuild's `define` in scripts/build.ts; undeclared at run time from the sources.
  var __UPDATER_BUNDLE__: boolean | undefined;
}

/**
 * Stands in for src/server/dashboard-bundle.ts in the build (scripts/build.ts). The build serves
 * the prebuilt dist/dashboard/app.js and never bundles the dashboard at run time, so esbuild (a
 * build tool, a devDependency) is not loaded by, or installed with, what runs.
 */
export function bundleClient(): Promise<string> {
  return Promise.reject(new Error('the build serves dist/dashboard/app.js; bundling the dashboard at run time needs the sources and esbuild'));
}

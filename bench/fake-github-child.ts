/**
 * The local stand-in for GitHub in a process of its own, so that a bench measuring the updater's
 * CPU does not count the stand-in's. Argument: a JSON `{repos: {<owner/name>: [{tag, body}]}}`.
 * Prints `{"apiUrl", "rawUrl"}` on one line once listening; exits when its stdin closes.
 */
import { startFakeGitHub, type FakeReleaseSpec } from '../src/demo/local-github.js';

const spec = JSON.parse(process.argv[2] ?? '{}') as { repos?: Record<string, FakeReleaseSpec[]> };
const gh = await startFakeGitHub();
for (const [repo, releases] of Object.entries(spec.repos ?? {})) for (const r of releases) gh.addRelease(repo, r);
process.stdout.write(`${JSON.stringify({ apiUrl: gh.apiUrl, rawUrl: gh.rawUrl })}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  void gh.close().then(() => process.exit(0));
});

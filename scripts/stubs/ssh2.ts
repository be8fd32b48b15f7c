/**
 * Stands in for `ssh2` in the build (scripts/build.ts). docker-modem loads ssh2 when it is loaded,
 * only to reach an engine over `DOCKER_HOST=ssh://…`, and ssh2's WebAssembly reserves 16 MB the
 * moment it loads. The updater drives the device's own engine through its socket (or tcp://), so
 * the build leaves ssh2 out; an ssh:// DOCKER_HOST gets this error instead of a connection.
 */
export class Client {
  constructor() {
    throw new Error('DOCKER_HOST=ssh://… is not supported by the updater: point it at the engine\'s socket (unix:///var/run/docker.sock) or tcp://');
  }
}

/**
 * Stands in for `@grpc/grpc-js` and `@grpc/proto-loader` in the build (scripts/build.ts).
 * dockerode loads them when it is loaded, only for BuildKit sessions (`buildImage` with
 * BuildKit), which the updater never starts: it pulls images, it does not build them.
 */
function unsupported(): never {
  throw new Error('BuildKit sessions (gRPC) are not part of the updater\'s build: it pulls images and never builds them');
}
export class Server {
  constructor() {
    unsupported();
  }
}
export const ServerCredentials = { createInsecure: unsupported };
export const loadSync = unsupported;
export const loadPackageDefinition = unsupported;

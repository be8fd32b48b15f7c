/**
 * Backups of an app tree. `archiveTree` packs a directory into a .tar.gz the way
 * `tar -C dir -czf out .` would (names relative to `dir`; files with their modes, directories,
 * symlinks kept as symlinks and never followed), streaming with bounded memory. It writes
 * `<out>.partial`, fsyncs it, renames it to `<out>` and fsyncs the directory, so a file with the
 * final name is always whole; on failure or abort the partial file is removed.
 *
 * Not kept: sockets, fifos and devices (a restore would refuse them), ownership, and hard links
 * between files (each is stored as its own file). `restoreTree` unpacks such an archive.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, open, readdir, readlink, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';
import { fsyncDir } from '../../util/fs-atomic.js';

export { restoreTree } from './extract.js';

/** Adds one entry (with its data, for a file) and resolves once the pack has taken all of it. */
function addEntry(pack: tar.Pack, header: Parameters<tar.Pack['entry']>[0], data?: Readable): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const sink = pack.entry(header, (error) => (error ? reject(error) : resolve()));
    if (data) pipeline(data, sink).catch(reject);
    else sink.end(undefined);
  });
}

/** Packs `dir`'s contents into the .tar.gz `outFile` (see the header). */
export async function archiveTree(dir: string, outFile: string, options: { signal?: AbortSignal } = {}): Promise<{ entries: number; bytes: number }> {
  const { signal } = options;
  signal?.throwIfAborted();
  const partial = `${outFile}.partial`;
  let entries = 0;
  let bytes = 0;

  const walk = async (pack: tar.Pack, rel: string): Promise<void> => {
    for (const name of (await readdir(join(dir, rel))).sort()) {
      signal?.throwIfAborted();
      const path = rel ? `${rel}/${name}` : name;
      const abs = join(dir, path);
      const st = await lstat(abs);
      const common = { name: path, mode: st.mode & 0o777, mtime: st.mtime };
      if (st.isDirectory()) {
        await addEntry(pack, { ...common, name: `${path}/`, type: 'directory' });
        entries++;
        await walk(pack, path);
      } else if (st.isSymbolicLink()) {
        await addEntry(pack, { ...common, type: 'symlink', linkname: await readlink(abs) });
        entries++;
      } else if (st.isFile()) {
        // Read exactly the size in the header: a file that changes meanwhile fails the backup.
        const data = st.size > 0 ? createReadStream(abs, { start: 0, end: st.size - 1 }) : undefined;
        await addEntry(pack, { ...common, type: 'file', size: st.size }, data);
        entries++;
        bytes += st.size;
      }
    }
  };

  try {
    const pack = tar.pack();
    const writing = pipeline(pack, createGzip(), createWriteStream(partial, { mode: 0o600 }), { signal }).then(
      () => null,
      (error: Error) => error,
    );
    try {
      await walk(pack, '');
      pack.finalize();
    } catch (error) {
      pack.destroy(error as Error);
      throw (await writing) ?? error; // the writer's failure (disk full, ...) explains more
    }
    const failed = await writing;
    if (failed) throw failed;
    const fh = await open(partial, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(partial, outFile);
  } catch (error) {
    await rm(partial, { force: true });
    signal?.throwIfAborted();
    throw error;
  }
  fsyncDir(dirname(outFile));
  return { entries, bytes };
}

// Loaded with `--import` into a diagnostic copy of the service by the idle bench (bench/idle.ts),
// never into what ships: on SIGUSR2 it writes what the process holds, as V8 and node count it, to
// the file named by UPDATER_BENCH_MEMORY_OUT, then a heap snapshot beside it (.heapsnapshot). The
// bench reads its RSS before it sends the signal.
import { writeFileSync } from 'node:fs';
import v8 from 'node:v8';

const out = process.env.UPDATER_BENCH_MEMORY_OUT;
if (out) {
  process.on('SIGUSR2', () => {
    const stats = {
      memoryUsage: process.memoryUsage(),
      heap: v8.getHeapStatistics(),
      spaces: v8.getHeapSpaceStatistics(),
      code: v8.getHeapCodeStatistics(),
      modules: process.moduleLoadList.length,
    };
    v8.writeHeapSnapshot(`${out}.heapsnapshot`);
    writeFileSync(out, JSON.stringify(stats));
  });
}

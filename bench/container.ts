/**
 * Container update on the real test bed (test/env/up.sh): the compose project of sample:1.0.0
 * updated to 1.1.0 (Docker HEALTHCHECK, 1 s interval) by the service, against the bare baseline
 * of doing it by hand with the same compose tool, measured in the same run; and how long after
 * the service is really up-to-date and healthy the run reports `succeeded`.
 *
 * Every measurement starts from the same state: the project on 1.0.0, up and answering, and
 * sample:1.1.0 removed locally, so both pull. Rounds alternate which goes first.
 */
import Docker from 'dockerode';
import { readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { detectCompose } from '../src/kinds/container/compose-cli.js';
import { containerWorld, type ContainerWorld } from '../test/support/container-world.js';
import { probeBed, run } from '../test/support/testbed.js';
import { fmt, percentile, verdict, type Section } from './util.js';

/** The bench's own Engine API client (the driver's is private to it), made at first use: after containerWorld has set DOCKER_HOST. */
let client: Docker | null = null;
const engineApi = () => (client ??= new Docker());

const ROUNDS = 3;
const FROM = '1.0.0';
const TO = '1.1.0';
/** The bare baseline's poll interval (a person's script), and the bench's own during our run. */
const BARE_POLL_MS = 20;
const LAG_POLL_MS = 10;
const GOAL_RATIO = 1.1;
const GOAL_LAG_MS = 300;
/** Safety nets against a hang, not measurements. */
const READY_WITHIN_MS = 60_000;

const median = (values: number[]) => percentile(values, 50);
const s = (msValue: number) => `${fmt(msValue / 1000, 2)} s`;

/** What the bench itself can see: the health URL's version, and Docker's health of the service's container. */
class Observer {
  private project = '';

  constructor(private readonly w: ContainerWorld) {}

  async init(): Promise<void> {
    const id = (await this.w.compose('ps', '-q', 'sample')).stdout.trim();
    const info = await engineApi().getContainer(id).inspect();
    this.project = info.Config.Labels['com.docker.compose.project'] ?? '';
    if (!this.project) throw new Error(`container ${id} has no compose project label`);
  }

  /** The service's running container (by compose labels: one Engine API call, no compose process). */
  async containerId(): Promise<string | null> {
    const list = await engineApi().listContainers({ filters: { label: [`com.docker.compose.project=${this.project}`, 'com.docker.compose.service=sample'], status: ['running'] } });
    return list[0]?.Id ?? null;
  }

  async version(): Promise<string | null> {
    try {
      const r = await fetch(`http://127.0.0.1:${this.w.port}/health`, { signal: AbortSignal.timeout(1000) });
      const text = await r.text();
      if (r.status !== 200) return null;
      return ((JSON.parse(text) as { version?: string }).version ?? null) || null;
    } catch {
      return null;
    }
  }

  /** `docker inspect` .State.Health.Status, through the Engine API. */
  async health(id: string | null): Promise<string | null> {
    if (!id) return null;
    try {
      const info = await engineApi().getContainer(id).inspect();
      return (info.State as { Health?: { Status?: string } }).Health?.Status ?? null;
    } catch {
      return null;
    }
  }

  /**
   * Polls every `intervalMs` (start to start) until the health URL reports `version` and Docker
   * says healthy. Resolves with when the successful probe was started and when it answered.
   */
  async untilReady(version: string, intervalMs: number, idOnce?: string, stop?: AbortSignal): Promise<{ start: number; end: number; probes: number }> {
    const deadline = performance.now() + READY_WITHIN_MS;
    for (let probes = 1; ; probes++) {
      stop?.throwIfAborted();
      const start = performance.now();
      const [v, h] = await Promise.all([this.version(), (async () => this.health(idOnce ?? (await this.containerId())))()]);
      const end = performance.now();
      if (v === version && h === 'healthy') return { start, end, probes };
      if (end > deadline) throw new Error(`not ready within ${READY_WITHIN_MS} ms: version ${v}, health ${h}`);
      const wait = start + intervalMs - performance.now();
      if (wait > 0) await sleep(wait);
    }
  }

  /** From the container's own record: start → first passing HEALTHCHECK (ms). */
  async startToHealthy(): Promise<number | null> {
    const id = await this.containerId();
    if (!id) return null;
    const info = await engineApi().getContainer(id).inspect();
    const log = (info.State as { Health?: { Log?: Array<{ End: string; ExitCode: number }> } }).Health?.Log ?? [];
    const pass = log.find((l) => l.ExitCode === 0);
    return pass ? Date.parse(pass.End) - Date.parse(info.State.StartedAt) : null;
  }
}

const must = (what: string, r: { code: number; stdout: string; stderr: string }) => {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}`);
};

interface OursRound {
  total: number;
  /** Time spent in each phase, from its transition to the next. */
  phases: Record<string, number>;
  /** T_done − T_ready. */
  lag: number;
  /** T_ready − the `verify` transition. */
  readyAfterVerify: number;
  /** The driver's first container inspect that said healthy − T_ready. */
  driverSawAfterReady: number;
  /** T_done − the driver's first healthy inspect. */
  doneAfterDriverSaw: number;
  startToHealthy: number | null;
}

interface BareRound {
  total: number;
  pull: number;
  up: number;
  wait: number;
  startToHealthy: number | null;
}

export async function benchContainer(): Promise<Section> {
  const title = `Container update on the real test bed: sample ${FROM} → ${TO} (${ROUNDS} rounds)`;
  const found = await probeBed();
  if (typeof found === 'string') return { title, rows: [], notes: [`skipped: ${found}`] };
  const bed = found;
  const tool = (await detectCompose())!;
  const w = await containerWorld(bed, { healthTimeoutSeconds: 30 });
  try {
    const original = readFileSync(w.composeFile, 'utf8');
    const updated = original.replace(`sample:${FROM}"`, `sample:${TO}"`);
    if (updated === original) throw new Error(`no sample:${FROM} in ${w.composeFile}`);
    const ref = `${bed.registry}/sample:${TO}`;
    const see = new Observer(w);
    await see.init();

    /** Back to the common starting state: on FROM, up and answering, TO not on the machine. */
    const reset = async () => {
      writeFileSync(w.composeFile, original);
      must('compose up -d (reset)', await w.compose('up', '-d'));
      await run('docker', ['rmi', '-f', ref], bed.env);
      if (await w.docker.hasImage(ref)) throw new Error(`${ref} is still on the machine after rmi -f`);
      const deadline = performance.now() + READY_WITHIN_MS;
      while ((await see.version()) !== FROM) {
        if (performance.now() > deadline) throw new Error(`the service does not answer ${FROM} after the reset`);
        await sleep(20);
      }
    };

    const ours = async (): Promise<OursRound> => {
      const at = new Map<string, number>();
      const stop = new AbortController();
      const poll: { ready?: Promise<{ start: number; end: number }> } = {};
      // Instrumentation only: when the driver's own container inspects (verify) first say healthy.
      const inspect = w.docker.container;
      let driverSaw: number | null = null;
      w.docker.container = async (id: string) => {
        const state = await inspect.call(w.docker, id);
        if (driverSaw === null && at.has('verify') && state?.health === 'healthy') driverSaw = performance.now();
        return state;
      };
      const off = w.engine.transitions.subscribe((t) => {
        at.set(t.to, performance.now());
        if (t.to === 'apply') {
          poll.ready = see.untilReady(TO, LAG_POLL_MS, undefined, stop.signal);
          poll.ready.catch(() => undefined);
        }
      });
      try {
        const t0 = performance.now();
        const { runId } = await w.engine.startRun('sample', { version: TO });
        const result = await w.engine.waitForRun(runId);
        const total = performance.now() - t0;
        if (result.state !== 'succeeded') throw new Error(`run ${runId} ended ${result.state}: ${result.message}`);
        if (!poll.ready) throw new Error('no apply transition was seen');
        if (driverSaw === null) throw new Error('the driver never saw the container healthy');
        const tReady = (await poll.ready).start;
        const tDone = at.get('succeeded')!;
        const order = ['discover', 'validate', 'backup', 'apply', 'verify', 'succeeded'];
        const phases: Record<string, number> = { 'start → discover': at.get('discover')! - t0 };
        for (let i = 0; i + 1 < order.length; i++) phases[order[i]!] = at.get(order[i + 1]!)! - at.get(order[i]!)!;
        phases['succeeded → waitForRun'] = t0 + total - at.get('succeeded')!;
        return {
          total,
          phases,
          lag: tDone - tReady,
          readyAfterVerify: tReady - at.get('verify')!,
          driverSawAfterReady: driverSaw - tReady,
          doneAfterDriverSaw: tDone - driverSaw,
          startToHealthy: await see.startToHealthy(),
        };
      } finally {
        w.docker.container = inspect;
        stop.abort();
        off();
      }
    };

    const bare = async (): Promise<BareRound> => {
      const t0 = performance.now();
      writeFileSync(w.composeFile, updated);
      must('compose pull sample', await w.compose('pull', 'sample'));
      const t1 = performance.now();
      must('compose up -d sample', await w.compose('up', '-d', 'sample'));
      const t2 = performance.now();
      const id = await see.containerId();
      const done = await see.untilReady(TO, BARE_POLL_MS, id ?? undefined);
      return { total: done.end - t0, pull: t1 - t0, up: t2 - t1, wait: done.end - t2, startToHealthy: await see.startToHealthy() };
    };

    const oursRounds: OursRound[] = [];
    const bareRounds: BareRound[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? ['ours', 'bare'] : ['bare', 'ours'];
      for (const which of order) {
        await reset();
        if (which === 'ours') oursRounds.push(await ours());
        else bareRounds.push(await bare());
      }
    }
    await reset();
    // Leave the bed as it was found: the image back on the machine.
    must(`docker pull ${ref}`, await run('docker', ['pull', ref], bed.env));

    // One compose process, as the driver runs it (`ps -q`), for scale.
    const psTimes: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      must('compose ps -q', await w.compose('ps', '-q', 'sample'));
      psTimes.push(performance.now() - t);
    }

    const oursMs = median(oursRounds.map((r) => r.total));
    const bareMs = median(bareRounds.map((r) => r.total));
    const lagMs = median(oursRounds.map((r) => r.lag));
    const phaseNames = Object.keys(oursRounds[0]!.phases);
    const phases = phaseNames.map((p) => `${p} ${fmt(median(oursRounds.map((r) => r.phases[p]!)), 0)} ms`).join(', ');
    const healthy = [...oursRounds, ...bareRounds].map((r) => r.startToHealthy).filter((v): v is number => v !== null);
    return {
      title,
      rows: [
        ['one update by the service (median)', s(oursMs), `${s(bareMs)} (bare compose)`, fmt(oursMs / bareMs, 2), `≤ ${fmt(GOAL_RATIO, 2)}×`, verdict(oursMs / bareMs <= GOAL_RATIO)],
        ['health-detection lag, succeeded − ready (median)', `${fmt(lagMs, 0)} ms`, `${LAG_POLL_MS} ms (bench poll interval, the floor)`, fmt(lagMs / LAG_POLL_MS, 1), `≤ ${GOAL_LAG_MS} ms`, verdict(lagMs <= GOAL_LAG_MS)],
      ],
      notes: [
        `Compose tool: \`${tool.join(' ')}\`. Each measurement starts with the project on ${FROM} answering, and ${ref} removed (\`docker rmi -f\`), so both pull; rounds alternate which goes first.`,
        `Service: from \`engine.startRun\` to \`waitForRun\` resolving \`succeeded\` (discover against the fake GitHub, validate, backup, pull, compose rewrite, recreate, verify). Rounds: ${oursRounds.map((r) => s(r.total)).join(', ')}.`,
        `Bare: rewrite the tag, \`compose pull sample\`, \`compose up -d sample\`, then poll every ${BARE_POLL_MS} ms until /health reports ${TO} and Docker health is healthy (Engine API inspect). Rounds: ${bareRounds.map((r) => s(r.total)).join(', ')}; median pull ${fmt(median(bareRounds.map((r) => r.pull)), 0)} ms, up ${fmt(median(bareRounds.map((r) => r.up)), 0)} ms, wait for healthy ${fmt(median(bareRounds.map((r) => r.wait)), 0)} ms.`,
        `Service, median per phase: ${phases}.`,
        `Lag: the bench polls /health and Docker health every ${LAG_POLL_MS} ms from the \`apply\` transition; T_ready is the start of the first probe that saw ${TO} and healthy, T_done the \`succeeded\` transition. Rounds: ${oursRounds.map((r) => `${fmt(r.lag, 0)} ms`).join(', ')}; T_ready came ${fmt(median(oursRounds.map((r) => r.readyAfterVerify)), 0)} ms (median) after the \`verify\` transition. Split (medians): the driver's first container inspect that said healthy came ${fmt(median(oursRounds.map((r) => r.driverSawAfterReady)), 0)} ms after T_ready (the driver polls every 50 ms, plus the checks' own time), and \`succeeded\` ${fmt(median(oursRounds.map((r) => r.doneAfterDriverSaw)), 0)} ms after that (2 consecutive passes needed, 50 ms apart).`,
        `Docker's own record, container start → first passing HEALTHCHECK (median of all rounds): ${healthy.length ? `${fmt(median(healthy), 0)} ms` : 'n/a'} (HEALTHCHECK interval 1 s). One \`${tool.join(' ')} ps -q\` process takes ${fmt(median(psTimes), 0)} ms (median of 3).`,
      ],
    };
  } finally {
    await w.close();
  }
}

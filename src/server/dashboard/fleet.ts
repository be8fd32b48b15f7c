/**
 * The Fleet panel (when the updater has `nats` configured): every device of the bus with its
 * versions and run, and the rollouts with each device's result, from `GET /api/fleet` (the
 * device's read of the JetStream KV buckets `dune_devices` and `dune_rollouts`). Hidden when the
 * updater answers 404 (no `nats`). Asked again every 5 s while the page is visible.
 */
import type { FleetDevice, RolloutRecord } from '../../contract/fleet.js';
import { api, ApiError } from './api.js';
import { $, ago, h, setText } from './dom.js';

export interface FleetOverview {
  devices: FleetDevice[];
  rollouts: RolloutRecord[];
}

const REFRESH_MS = 5000;
const ROLLOUT_TONE: Record<string, string> = { done: 'ok', halted: 'error', canary: 'active', batches: 'active' };
/** Whether `b` is a newer version than `a` (semver precedence, enough for a hint: numbers, then a release before its prereleases). */
function newer(a: string, b: string): boolean {
  const parse = (v: string) => {
    const [main = '', pre] = v.replace(/^v/i, '').split('+')[0]!.split(/-(.*)/s);
    return { nums: main.split('.').map((n) => Number(n) || 0), pre: pre ?? null };
  };
  const x = parse(a);
  const y = parse(b);
  for (let i = 0; i < Math.max(x.nums.length, y.nums.length); i++) {
    const d = (y.nums[i] ?? 0) - (x.nums[i] ?? 0);
    if (d) return d > 0;
  }
  if (x.pre === y.pre) return false;
  if (x.pre === null) return false;
  if (y.pre === null) return true;
  return y.pre.localeCompare(x.pre, undefined, { numeric: true }) > 0;
}

const resultTone = (result: string) =>
  result === 'succeeded' || result === 'up_to_date' ? 'ok' : result === 'pending' ? 'active' : result === 'skipped' ? 'muted' : 'error';

function devicesTable(devices: FleetDevice[]): HTMLElement {
  if (!devices.length) return h('p', { class: 'empty' }, 'No device has written its status to the bus yet.');
  const names = [...new Set(devices.flatMap((d) => d.components.map((c) => c.name)))];
  return h(
    'table',
    { class: 'fleet-table', 'data-testid': 'fleet-devices' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Device'), h('th', { scope: 'col' }, 'Status'), ...names.map((n) => h('th', { scope: 'col' }, n)), h('th', { scope: 'col' }, 'Run'))),
    h(
      'tbody',
      {},
      ...devices.map((d) =>
        h(
          'tr',
          { 'data-device': d.device },
          h('th', { scope: 'row' }, d.device),
          h('td', {}, h('span', { class: `chip tone-${d.online ? 'ok' : 'muted'}` }, d.online ? 'online' : 'offline'), ' ', h('span', { class: 'muted', title: d.updated_at }, ago(d.updated_at))),
          ...names.map((n) => {
            const c = d.components.find((x) => x.name === n);
            if (!c) return h('td', {}, '–');
            const behind = c.latest !== null && c.installed !== null && newer(c.installed, c.latest);
            return h('td', { 'data-component': n, title: c.latest ? `latest release: ${c.latest}` : null }, h('span', { class: 'installed' }, c.installed ?? '?'), behind ? h('span', { class: 'muted' }, ` → ${c.latest}`) : null);
          }),
          h('td', {}, d.active_run ? `${d.active_run.component}: ${d.active_run.state}` : '–'),
        ),
      ),
    ),
  );
}

function rolloutsList(rollouts: RolloutRecord[]): HTMLElement {
  if (!rollouts.length) return h('p', { class: 'empty' }, 'No rollout yet (`updater fleet rollout COMPONENT --version V`).');
  const newest = [...rollouts].sort((a, b) => b.created_at.localeCompare(a.created_at));
  return h(
    'ol',
    { class: 'fleet-rollouts', 'data-testid': 'fleet-rollouts' },
    ...newest.map((r) => {
      const done = r.devices.filter((d) => d.result !== 'pending').length;
      return h(
        'li',
        { 'data-rollout': r.id },
        h(
          'details',
          {},
          h('summary', {}, h('span', { class: `chip tone-${ROLLOUT_TONE[r.state] ?? 'muted'}` }, r.state), ' ', h('strong', {}, `${r.component} ${r.version}`), ` · ${done} of ${r.devices.length} devices · ${r.id} · ${ago(r.updated_at)}`),
          h(
            'ul',
            { class: 'fleet-devices' },
            ...r.devices.map((d) => {
              // A device a finished rollout never got to (after a halt) was not started, not waiting.
              const result = d.result === 'pending' && (r.state === 'halted' || r.state === 'done') ? 'not started' : d.result;
              const chipTone = result === 'not started' ? 'muted' : resultTone(result);
              return h('li', { 'data-device': d.device }, h('span', { class: `chip tone-${chipTone}` }, result), ` ${d.device} (${d.group})${d.run_id ? `, run ${d.run_id}` : ''}${d.reason ? `: ${d.reason}` : ''}`);
            }),
          ),
        ),
      );
    }),
  );
}

/** Starts the panel when the updater is on NATS (its /healthz has `nats`): shown once `GET /api/fleet` answers, kept current every 5 s. */
export async function startFleet(): Promise<void> {
  const panel = $('#fleet');
  try {
    const health = await api<Record<string, unknown>>('GET', '/healthz');
    if (!('nats' in health)) return;
  } catch {
    return;
  }
  let open = new Set<string>();
  const refresh = async (): Promise<void> => {
    let overview: FleetOverview;
    try {
      overview = await api<FleetOverview>('GET', '/api/fleet');
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        panel.hidden = true;
        return;
      }
      setText($('#fleet-note'), `The fleet cannot be read: ${(error as Error).message}`);
      return;
    }
    // Keep the rollouts a person opened open across refreshes.
    open = new Set([...panel.querySelectorAll<HTMLDetailsElement>('[data-rollout] details[open]')].map((d) => d.closest<HTMLElement>('[data-rollout]')!.dataset.rollout!));
    panel.hidden = false;
    const online = overview.devices.filter((d) => d.online).length;
    setText($('#fleet-note'), `${overview.devices.length} devices, ${online} online`);
    $('#fleet-devices').replaceChildren(devicesTable(overview.devices));
    $('#fleet-rollouts').replaceChildren(rolloutsList(overview.rollouts));
    for (const id of open) panel.querySelector<HTMLDetailsElement>(`[data-rollout="${CSS.escape(id)}"] details`)?.setAttribute('open', '');
  };
  await refresh();
  setInterval(() => {
    if (document.visibilityState === 'visible') void refresh();
  }, REFRESH_MS);
}

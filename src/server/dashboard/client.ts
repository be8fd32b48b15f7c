/**
 * The dashboard (served at `/`, bundled by esbuild in src/server/dashboard.ts). Plain typed DOM
 * code: the page's static skeleton is index.html; this fills it from REST and keeps it current
 * from the WebSocket feed. Elements are created once and updated in place (keyed by component
 * name, run id and seq), so focus, open <details> and typed input survive every update.
 */
import { api, ApiError, token, type CheckResult, type Component, type Run, type Transition, type UpdateAllStarted } from './api.js';
import { $, ago, bytes, clock, duration, fullDate, h, notes, setText } from './dom.js';
import { Feed, type ConnState, type Progress } from './feed.js';
import { startFleet } from './fleet.js';

const PHASES = ['discover', 'validate', 'backup', 'apply', 'verify'] as const;
const TERMINAL = new Set(['succeeded', 'up_to_date', 'validated', 'aborted', 'rolled_back', 'rollback_failed']);
const LABELS: Record<string, string> = {
  up_to_date: 'up to date',
  rolled_back: 'rolled back',
  rollback_failed: 'rollback failed',
  rollback: 'rolling back',
};
/** A restore asked for ends `rolled_back`: for that run it is the good outcome. */
const restored = (state: string, run?: Run) => state === 'rolled_back' && run?.mode === 'restore';
const label = (state: string, run?: Run) => (restored(state, run) ? 'restored' : (LABELS[state] ?? state));

type Tone = 'ok' | 'warn' | 'error' | 'active' | 'muted';
function tone(state: string, run?: Run): Tone {
  if (state === 'succeeded' || state === 'validated' || state === 'up_to_date' || restored(state, run)) return 'ok';
  if (state === 'rolled_back' || state === 'rollback' || state === 'aborted') return 'warn';
  if (state === 'rollback_failed') return 'error';
  return TERMINAL.has(state) ? 'muted' : 'active';
}

/** A run as the page knows it: the REST summary, its transitions by seq, the latest transient progress per seq. */
interface RunState extends Run {
  rows: Map<number, Transition>;
  progress: Map<number, Progress>;
  loaded: boolean;
}

const runs = new Map<number, RunState>();
let components: Component[] = [];
/** Runs listed by the last GET /api/runs (the history shows these plus any seen live since). */
let listed = new Set<number>();
let historyLimit = 20;
/** The run in the timeline: the active one, else the newest. */
let focusId: number | null = null;
let conn: { state: ConnState; retryInMs: number | null } = { state: 'connecting', retryInMs: null };
/** Components with a request in flight, 'check' and 'all'. */
const pending = new Set<string>();
/** An update of all components goes on (told by the feed's `update_batch`): no other run may start. */
let batchRunning = false;
const versionInput = new Map<string, string>();
const finishedSeen = new Set<number>();
let banner: { runId: number; state: string; title: string; message: string } | null = null;
const DISMISSED_KEY = 'dune-updater.dismissed-banner';

// ---------------------------------------------------------------------------------------------
// State

const sorted = (run: RunState): Transition[] => [...run.rows.values()].sort((a, b) => a.seq - b.seq);
const lastRow = (run: RunState): Transition | undefined => sorted(run).at(-1);
/** The run's state: its newest transition wins over a summary that may be older. */
const stateOf = (run: RunState): string => lastRow(run)?.to ?? run.state;
const messageOf = (run: RunState): string => lastRow(run)?.message ?? run.message ?? '';
const finished = (run: RunState) => TERMINAL.has(stateOf(run));
const busy = () => batchRunning || components.some((c) => c.active_run !== null) || [...runs.values()].some((r) => !finished(r));

function ensureRun(id: number, component: string): RunState {
  let run = runs.get(id);
  if (!run) {
    const now = new Date().toISOString();
    run = { run_id: id, component, kind: '', from_version: null, to_version: null, dry_run: false, state: 'idle', message: null, created_at: now, updated_at: now, rows: new Map(), progress: new Map(), loaded: false };
    runs.set(id, run);
  }
  return run;
}

function mergeRun(r: Run): RunState {
  const run = ensureRun(r.run_id, r.component);
  const { transitions, ...summary } = r;
  // Fetches of one run may answer out of order: a summary from before discover (no versions yet)
  // must not erase the versions a later one brought. A run's versions never go back to unknown.
  const known = { from_version: run.from_version, to_version: run.to_version };
  Object.assign(run, summary);
  run.from_version ??= known.from_version;
  run.to_version ??= known.to_version;
  if (transitions) {
    for (const t of transitions) run.rows.set(t.seq, { ...t, level: t.level ?? 'info' });
    feed.seen(Math.max(0, ...transitions.map((t) => t.seq)));
    run.loaded = true;
  }
  return run;
}

function focus(id: number): void {
  if (focusId === null || id >= focusId) focusId = id;
}

async function loadRun(id: number): Promise<RunState> {
  const run = mergeRun(await api<Run>('GET', `/api/runs/${id}`));
  render();
  return run;
}

const loadTimers = new Map<number, number>();
/**
 * Live rows lack the event and the server's time: fetch the run shortly after (once per 250 ms at
 * most). A pending fetch is not put off by the next message: a download's steady progress would
 * otherwise hold the run's versions back until it ends.
 */
function loadRunSoon(id: number): void {
  if (loadTimers.has(id)) return;
  loadTimers.set(
    id,
    window.setTimeout(() => {
      loadTimers.delete(id);
      void loadRun(id).catch(() => undefined);
    }, 250),
  );
}

async function refresh(): Promise<void> {
  const [list, runList] = await Promise.all([api<Component[]>('GET', '/api/components'), api<Run[]>('GET', `/api/runs?limit=${historyLimit}`)]);
  components = list;
  listed = new Set(runList.map((r) => r.run_id));
  for (const r of runList) {
    const known = runs.get(r.run_id);
    // A summary fetched while transitions arrived may be older than what the socket said.
    if (known && known.rows.size > 0 && finished(known) && !TERMINAL.has(r.state)) continue;
    mergeRun(r);
  }
  const active = components.find((c) => c.active_run !== null)?.active_run ?? null;
  const newest = runList[0]?.run_id ?? null;
  if (active !== null) focus(active);
  else if (newest !== null) focus(newest);
  if (focusId !== null) {
    const run = await loadRun(focusId);
    if (banner === null && finished(run)) showBannerFor(run, true);
  }
  render();
}

let refreshing: Promise<void> | null = null;
let refreshAgain = false;
/** One refresh at a time; a request during one runs another after it. */
function refreshSoon(): Promise<void> {
  if (refreshing) {
    refreshAgain = true;
    return refreshing;
  }
  refreshing = refresh()
    .catch((error: unknown) => {
      if (error instanceof ApiError && error.status !== 0) notice(`Could not load: ${error.message}`, 'error');
    })
    .finally(() => {
      refreshing = null;
      if (refreshAgain) {
        refreshAgain = false;
        void refreshSoon();
      }
    });
  return refreshing;
}

// ---------------------------------------------------------------------------------------------
// The live feed

const feed = new Feed({
  state(state, retryInMs) {
    conn = { state, retryInMs };
    if (state === 'unauthorized') askToken('The live feed needs the API token.');
    render();
  },
  // Before subscribing: reload what may have changed while away, so the replay starts at the newest seq known.
  opened: () => refreshSoon(),
  transition(p) {
    const run = ensureRun(p.run_id, p.component);
    const prev = lastRow(run);
    if (!prev && banner && banner.runId !== p.run_id) hideBanner(); // a new run: the old news is in the history
    run.rows.set(p.seq, { seq: p.seq, from: prev?.to ?? null, to: p.state, event: null, at: new Date().toISOString(), message: p.message, level: p.level });
    focus(p.run_id);
    loadRunSoon(p.run_id);
    if (TERMINAL.has(p.state)) void onFinished(run);
    render();
  },
  transient(p) {
    const run = ensureRun(p.run_id, p.component);
    run.progress.set(p.seq, p);
    render();
  },
  result(r) {
    const run = ensureRun(r.run_id, r.component);
    void onFinished(run);
  },
  batch(b) {
    batchRunning = b.state === 'running';
    if (b.components.length === 0) notice(b.message, 'ok');
    else if (b.state === 'running') notice(`Update all (${b.runs.length} of ${b.components.length}): ${b.message}`, 'ok');
    else notice(`Update all: ${b.message}`, b.state === 'succeeded' ? 'ok' : 'error');
    render();
  },
});

async function onFinished(run: RunState): Promise<void> {
  if (finishedSeen.has(run.run_id)) return;
  finishedSeen.add(run.run_id);
  try {
    const full = await loadRun(run.run_id);
    showBannerFor(full, false);
    if (full.mode === 'restore' && stateOf(full) === 'rolled_back') notice(messageOf(full), 'ok');
  } catch {
    // the next refresh shows it
  }
  void refreshSoon();
}

// ---------------------------------------------------------------------------------------------
// Banner, notice, token

function dismissed(): number {
  try {
    return Number(sessionStorage.getItem(DISMISSED_KEY) ?? 0);
  } catch {
    return 0;
  }
}

/** A warning for an update rolled back, an error for a failed rollback; `onLoad`: only for the newest run, if not dismissed. */
function showBannerFor(run: RunState, onLoad: boolean): void {
  const state = stateOf(run);
  const failed = state === 'rollback_failed' || (state === 'rolled_back' && run.mode !== 'restore');
  if (!failed) return;
  if (onLoad && (run.run_id !== Math.max(...runs.keys()) || dismissed() === run.run_id)) return;
  const what = run.mode === 'restore' ? `restore of ${run.component}` : `${run.component} ${run.from_version ?? '?'} → ${run.to_version ?? 'latest'}`;
  const title = state === 'rollback_failed' ? `Rollback failed: manual intervention required (run #${run.run_id}, ${what}).` : `Update rolled back (run #${run.run_id}, ${what}).`;
  banner = { runId: run.run_id, state, title, message: messageOf(run) };
  render();
}

function hideBanner(): void {
  if (banner) {
    try {
      sessionStorage.setItem(DISMISSED_KEY, String(banner.runId));
    } catch {
      // no storage: dismissed for this page only
    }
  }
  banner = null;
  render();
}

let noticeTimer: number | undefined;
function notice(text: string, kind: 'ok' | 'error'): void {
  const el = $('#notice');
  el.textContent = text;
  el.className = `notice tone-${kind === 'ok' ? 'ok' : 'error'}`;
  el.hidden = false;
  clearTimeout(noticeTimer);
  if (kind === 'ok') noticeTimer = window.setTimeout(() => (el.hidden = true), 8000);
}

let afterToken: (() => void) | null = null;
function askToken(why: string, retry?: () => void): void {
  const dialog = $<HTMLDialogElement>('#token-dialog');
  afterToken = retry ?? null;
  setText($('#token-why'), why);
  if (!dialog.open) {
    dialog.returnValue = '';
    dialog.showModal();
  }
}

function tokenClosed(): void {
  const dialog = $<HTMLDialogElement>('#token-dialog');
  const input = $<HTMLInputElement>('#token-input');
  if (dialog.returnValue === 'save' && input.value.trim()) token.set(input.value.trim());
  else if (dialog.returnValue === 'forget') token.set(null);
  else return void (afterToken = null);
  input.value = '';
  feed.reconnectNow();
  afterToken?.();
  afterToken = null;
  render();
}

// ---------------------------------------------------------------------------------------------
// Actions

async function act(what: string, c: Component, request: () => Promise<{ run_id: number }>): Promise<void> {
  pending.add(c.name);
  render();
  try {
    const { run_id: id } = await request();
    ensureRun(id, c.name);
    focus(id);
    loadRunSoon(id); // the feed shows it live; this covers a run that ends before the socket says so
    $('#notice').hidden = true;
  } catch (error) {
    const e = error as ApiError;
    if (e.status === 401) askToken(`${what} needs the API token.`, () => void act(what, c, request));
    else notice(`${what} of ${c.name} did not start: ${e.message}`, 'error');
  } finally {
    pending.delete(c.name);
    render();
  }
}

const path = (c: Component, tail: string) => `/api/components/${encodeURIComponent(c.name)}/${tail}`;

function update(c: Component, dryRun: boolean): void {
  const version = versionInput.get(c.name)?.trim() || undefined;
  if (version && !/^[vV]?[0-9A-Za-z.+-]{1,64}$/.test(version)) return notice(`"${version}" is not a version (e.g. 1.2.0)`, 'error');
  const body: { version?: string; dry_run?: boolean } = {};
  if (version) body.version = version;
  if (dryRun) body.dry_run = true;
  void act(dryRun ? 'The dry run' : 'The update', c, () => api('POST', path(c, 'updates'), body));
}

function rollback(c: Component): void {
  if (!confirm(`Restore ${c.name} from its newest backup? The service is stopped and the backed-up files are put back.`)) return;
  void act('The rollback', c, () => api('POST', path(c, 'rollback')));
}

/** Update all: every component that has an update, one run after another, as the server plans it. */
async function updateAll(): Promise<void> {
  pending.add('all');
  render();
  try {
    const started = await api<UpdateAllStarted>('POST', '/api/updates', {});
    if (started.run_id !== null) {
      ensureRun(started.run_id, started.components[0] ?? '');
      focus(started.run_id);
      loadRunSoon(started.run_id);
    }
    notice(started.run_id === null ? started.message : `Update all: ${started.components.join(', then ')}. ${started.message}…`, 'ok');
  } catch (error) {
    const e = error as ApiError;
    if (e.status === 401) askToken('Updating all needs the API token.', () => void updateAll());
    else notice(`Update all did not start: ${e.message}`, 'error');
  } finally {
    pending.delete('all');
    render();
  }
}

async function checkNow(): Promise<void> {
  pending.add('check');
  render();
  try {
    const result = await api<CheckResult>('POST', '/api/checks', {});
    const offered = Object.entries(result.components).filter(([, s]) => s.update_available);
    notice(offered.length === 0 ? 'Checked: everything is up to date.' : `Checked: ${offered.map(([n, s]) => `${n} ${s.latest}`).join(', ')} available.`, 'ok');
    await refreshSoon();
  } catch (error) {
    const e = error as ApiError;
    if (e.status === 401) askToken('Checking needs the API token.', () => void checkNow());
    else notice(`The check failed: ${e.message}`, 'error');
  } finally {
    pending.delete('check');
    render();
  }
}

// ---------------------------------------------------------------------------------------------
// Views

/** One component card, built once; `update` changes only what changed. */
class Card {
  readonly el: HTMLElement;
  private readonly parts: Record<'running' | 'installed' | 'latest' | 'reason' | 'checked' | 'activity' | 'notesTitle', HTMLElement>;
  private readonly badge: HTMLElement;
  private readonly notes: HTMLDetailsElement;
  private readonly notesBody: HTMLElement;
  private readonly releaseLink: HTMLAnchorElement;
  private readonly input: HTMLInputElement;
  private readonly buttons: Record<'update' | 'dry' | 'rollback', HTMLButtonElement>;
  private notesText: string | null = null;
  private view: Component;

  constructor(c: Component) {
    this.view = c;
    const id = `version-${c.name}`;
    const dd = (testid: string) => h('dd', { 'data-testid': testid });
    this.parts = {
      running: h('span', { class: 'running', 'data-testid': 'running' }),
      installed: dd('installed'),
      latest: dd('latest'),
      reason: h('p', { class: 'reason', 'data-testid': 'reason', hidden: true }),
      checked: h('p', { class: 'muted small', 'data-testid': 'last-checked' }),
      activity: h('p', { class: 'activity', 'data-testid': 'activity', hidden: true }),
      notesTitle: h('summary'),
    };
    this.badge = h('span', { class: 'badge', 'data-testid': 'update-available', hidden: true }, 'Update available');
    this.notesBody = h('div');
    this.releaseLink = h('a', { target: '_blank', rel: 'noopener noreferrer' }, 'Release page');
    this.notes = h('details', { class: 'release-notes', 'data-testid': 'release-notes' }, this.parts.notesTitle, this.notesBody, h('p', { class: 'small' }, this.releaseLink));
    this.input = h('input', { id, type: 'text', autocomplete: 'off', spellcheck: 'false', 'data-testid': 'version-input', 'aria-describedby': `${id}-hint` });
    this.input.addEventListener('input', () => {
      versionInput.set(c.name, this.input.value);
      render();
    });
    const button = (text: string, testid: string, cls = '') => h('button', { type: 'button', class: cls, 'data-testid': testid }, text);
    this.buttons = { update: button('Update', 'update', 'primary'), dry: button('Dry run', 'dry-run'), rollback: button('Roll back', 'rollback') };
    this.buttons.update.type = 'submit';
    this.buttons.dry.addEventListener('click', () => update(this.view, true));
    this.buttons.rollback.addEventListener('click', () => rollback(this.view));
    const form = h(
      'form',
      { class: 'actions-form' },
      h('div', { class: 'field' }, h('label', { for: id }, 'Version'), this.input, h('span', { id: `${id}-hint`, class: 'muted small' }, 'blank = latest')),
      h('div', { class: 'buttons' }, this.buttons.update, this.buttons.dry, this.buttons.rollback),
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      update(this.view, false);
    });
    this.el = h(
      'article',
      { class: 'card', 'data-testid': `component-${c.name}`, 'aria-labelledby': `${id}-name` },
      h('div', { class: 'card-head' }, h('h3', { id: `${id}-name` }, c.name), h('span', { class: 'kind' }, c.kind), this.parts.running),
      h('dl', { class: 'versions' }, h('div', {}, h('dt', {}, 'Installed'), this.parts.installed), h('div', {}, h('dt', {}, 'Latest'), this.parts.latest), this.badge),
      this.parts.reason,
      this.parts.checked,
      this.parts.activity,
      this.notes,
      form,
    );
  }

  update(c: Component): void {
    this.view = c;
    const p = this.parts;
    setText(p.running, c.running === null ? 'state unknown' : c.running ? 'running' : 'stopped');
    p.running.className = `running tone-${c.running === null ? 'muted' : c.running ? 'ok' : 'error'}`;
    setText(p.installed, c.current_version ?? 'unknown');
    setText(p.latest, c.latest_version ?? '—');
    this.badge.hidden = !c.update_available;
    const reason = [c.stale ? 'The last check failed; this is an older result.' : '', c.reason ?? ''].filter(Boolean).join(' ');
    p.reason.hidden = reason === '';
    setText(p.reason, reason);
    setText(p.checked, c.last_checked ? `Checked ${ago(c.last_checked)}` : 'Not checked yet');
    if (c.last_checked) p.checked.title = fullDate(c.last_checked);
    // The socket knows of a run before the component list is fetched again.
    const active = [...runs.values()].find((r) => r.component === c.name && !finished(r)) ?? (c.active_run !== null ? runs.get(c.active_run) : undefined);
    const activeId = active?.run_id ?? c.active_run;
    p.activity.hidden = activeId === null;
    setText(p.activity, activeId === null ? '' : `Run #${activeId} in progress: ${active && active.rows.size > 0 ? label(stateOf(active)) : 'starting'}…`);
    this.notes.hidden = !c.release_notes;
    setText(p.notesTitle, `Release notes${c.latest_version ? ` · ${c.latest_version}` : ''}`);
    if (c.release_notes !== this.notesText) {
      this.notesText = c.release_notes;
      this.notesBody.replaceChildren(notes(c.release_notes ?? ''));
    }
    const url = c.release_url && /^https?:\/\//i.test(c.release_url) ? c.release_url : null; // never a javascript: link
    this.releaseLink.hidden = url === null;
    if (url) this.releaseLink.href = url;
    const typed = this.input.value.trim();
    this.input.placeholder = c.latest_version ? `latest (${c.latest_version})` : 'latest';
    setText(this.buttons.update, `Update to ${typed || c.latest_version || 'latest'}`);
    const blocked = busy() || pending.has(c.name);
    for (const b of Object.values(this.buttons)) b.disabled = blocked;
    this.buttons.rollback.title = 'Restore the newest backup of this component';
  }
}

const cards = new Map<string, Card>();

function renderComponents(): void {
  const box = $('#cards');
  if (components.length === 0) return;
  box.querySelector('.empty')?.remove();
  for (const [name, card] of cards) {
    if (!components.some((c) => c.name === name)) {
      card.el.remove();
      cards.delete(name);
    }
  }
  for (const c of components) {
    let card = cards.get(c.name);
    if (!card) {
      card = new Card(c);
      cards.set(c.name, card);
      box.append(card.el);
    }
    card.update(c);
  }
  const check = $<HTMLButtonElement>('#check');
  check.disabled = pending.has('check');
  setText(check, pending.has('check') ? 'Checking…' : 'Check now');
  const all = $<HTMLButtonElement>('#update-all');
  all.disabled = busy() || pending.has('all') || !components.some((c) => c.update_available);
  setText(all, pending.has('all') ? 'Starting…' : 'Update all');
}

function chip(state: string, run?: Run, testid?: string, quiet = false): HTMLElement {
  return h('span', { class: `chip tone-${quiet ? 'muted' : tone(state, run)}`, 'data-testid': testid }, label(state, run));
}

function progressBar(p: Progress): HTMLElement {
  const { percent, bytes: done, total } = p.progress ?? {};
  const pct = percent ?? (done !== undefined && total ? (100 * done) / total : undefined);
  const bar = h('progress', { max: 100, 'aria-label': p.message });
  if (pct !== undefined) bar.value = Math.max(0, Math.min(100, pct));
  const amount = done !== undefined ? (total ? `${bytes(done)} of ${bytes(total)}` : bytes(done)) : '';
  return h(
    'div',
    { class: 'progress', 'data-testid': 'progress' },
    bar,
    h('span', { class: 'small' }, [pct !== undefined ? `${Math.round(pct)} %` : '', amount].filter(Boolean).join(' · ') || p.message),
  );
}

/** One transition row: time, elapsed since the run began, state, message; a bar when it has progress. */
function row(run: RunState, t: Transition, start: number): HTMLLIElement {
  // Past phases are quiet; the phase under way and the outcome stand out.
  const current = t.seq === lastRow(run)?.seq;
  const quiet = !TERMINAL.has(t.to) && t.to !== 'rollback' && !(current && !finished(run));
  const level = TERMINAL.has(t.to) ? tone(t.to, run) : t.level;
  const li = h(
    'li',
    { class: `row level-${level}${TERMINAL.has(t.to) ? ' row-end' : ''}`, 'data-testid': 'timeline-row', 'data-seq': t.seq, 'data-state': t.to, 'data-event': t.event },
    h('time', { datetime: t.at, title: fullDate(t.at) }, clock(t.at)),
    h('span', { class: 'elapsed muted small' }, `+${duration(new Date(t.at).getTime() - start)}`),
    chip(t.to, run, undefined, quiet),
    h('span', { class: 'msg' }, t.message, t.event === 'recover' ? h('span', { class: 'tag', 'data-testid': 'recovered' }, 'recovered after a restart') : null),
  );
  const p = run.progress.get(t.seq);
  if (p) li.append(progressBar(p));
  return li;
}

/** Puts the run's rows into `list`, keyed by seq: existing rows are replaced only when they changed. */
function renderRows(list: HTMLElement, run: RunState): void {
  if (list.dataset.run !== String(run.run_id)) {
    list.replaceChildren();
    list.dataset.run = String(run.run_id);
  }
  const rows = sorted(run);
  const start = new Date(rows[0]?.at ?? run.created_at).getTime();
  const existing = new Map<number, HTMLLIElement>();
  for (const li of list.querySelectorAll<HTMLLIElement>(':scope > li')) existing.set(Number(li.dataset.seq), li);
  let next: Element | null = list.firstElementChild;
  for (const t of rows) {
    const fresh = row(run, t, start);
    const old = existing.get(t.seq);
    if (old) {
      // Same content (the common case): keep the node, so screen readers do not re-read it.
      if (old.outerHTML !== fresh.outerHTML) old.replaceWith(fresh);
      else {
        next = old.nextElementSibling;
        continue;
      }
    } else list.insertBefore(fresh, next);
    next = fresh.nextElementSibling;
  }
}

function renderSteps(run: RunState): void {
  const rows = sorted(run);
  const visited = rows.map((t) => t.to);
  const state = stateOf(run);
  const done = TERMINAL.has(state);
  const phases: readonly string[] = run.mode === 'restore' ? ['rollback'] : PHASES;
  const failAt = visited.findIndex((s) => s === 'rollback' || s === 'aborted');
  const failed = run.mode === 'restore' ? undefined : failAt > 0 ? visited[failAt - 1] : undefined;
  const items = phases.map((phase) => {
    const status = !visited.includes(phase) ? (done ? 'skipped' : 'todo') : phase === failed ? 'failed' : phase === state ? 'current' : 'done';
    return h('li', { class: `step step-${status}`, 'data-phase': phase }, h('span', { class: 'visually-hidden' }, `${status}: `), phase);
  });
  const endState = done ? state : state === 'rollback' && run.mode !== 'restore' ? 'rollback' : null;
  items.push(h('li', { class: `step step-end ${endState ? `tone-${tone(endState, run)}` : 'step-todo'}` }, endState ? label(endState, run) : 'done'));
  $('#steps').replaceChildren(...items);
}

function renderTimeline(): void {
  const run = focusId === null ? undefined : runs.get(focusId);
  $('#no-run').hidden = run !== undefined;
  const stateEl = $('#run-state');
  stateEl.hidden = !run;
  if (!run) return;
  const state = stateOf(run);
  setText(stateEl, label(state, run));
  stateEl.className = `chip tone-${tone(state, run)}`;
  stateEl.dataset.state = state;
  setText($('#timeline-title'), finished(run) ? 'Last run' : 'Current run');
  const kind = run.mode === 'restore' ? 'restore from backup' : run.dry_run ? 'dry run' : 'update';
  const versions = run.mode === 'restore' ? '' : ` · ${run.from_version ?? '?'} → ${run.to_version ?? 'latest'}`;
  setText($('#run-title'), `Run #${run.run_id} · ${run.component} · ${kind}${versions}`);
  renderSteps(run);
  renderRows($('#rows'), run);
}

interface HistoryItem {
  li: HTMLLIElement;
  details: HTMLDetailsElement;
  summary: HTMLElement;
  rows: HTMLOListElement;
}
const historyItems = new Map<number, HistoryItem>();

function historyItem(id: number): HistoryItem {
  const summary = h('summary');
  const rows = h('ol', { class: 'rows' });
  const details = h('details', { 'data-testid': 'history-item', 'data-run': id }, summary, rows);
  details.addEventListener('toggle', () => {
    const run = runs.get(id);
    if (details.open && run && (!run.loaded || !finished(run))) void loadRun(id).catch(() => undefined);
    render();
  });
  return { li: h('li', {}, details), details, summary, rows };
}

function renderHistory(): void {
  const list = $('#runs');
  const ids = [...runs.keys()].filter((id) => listed.has(id) || id > Math.max(0, ...listed)).sort((a, b) => b - a);
  $('#no-history').hidden = ids.length > 0;
  $('#more').hidden = listed.size < historyLimit;
  let next: Element | null = list.firstElementChild;
  for (const id of ids) {
    const run = runs.get(id)!;
    let item = historyItems.get(id);
    if (!item) {
      item = historyItem(id);
      historyItems.set(id, item);
      list.insertBefore(item.li, next);
    }
    next = item.li.nextElementSibling;
    const state = stateOf(run);
    const versions = run.mode === 'restore' ? 'restore from backup' : `${run.from_version ?? '?'} → ${run.to_version ?? 'latest'}${run.dry_run ? ' (dry run)' : ''}`;
    const took = run.finished_at ? ` · ${duration(new Date(run.finished_at).getTime() - new Date(run.created_at).getTime())}` : '';
    const key = [state, versions, took, messageOf(run)].join('|');
    if (item.summary.dataset.key !== key) {
      item.summary.dataset.key = key;
      item.summary.replaceChildren(
        h('span', { class: 'run-id' }, `#${id}`),
        h('span', { class: 'run-name' }, run.component),
        h('span', { class: 'run-versions' }, versions),
        chip(state, run, 'history-state'),
        h('time', { class: 'muted small', datetime: run.created_at, title: fullDate(run.created_at) }, `${clock(run.created_at)}${took}`),
        h('span', { class: 'run-message' }, messageOf(run)),
      );
    }
    if (item.details.open && run.rows.size > 0) renderRows(item.rows, run);
  }
}

function renderConn(): void {
  const el = $('#conn');
  el.dataset.state = conn.state;
  const retry = conn.retryInMs !== null ? ` (retry in ${Math.max(1, Math.round(conn.retryInMs / 1000))} s)` : '';
  const text: Record<ConnState, string> = {
    connecting: 'connecting…',
    connected: 'connected',
    reconnecting: `reconnecting…${retry}`,
    offline: 'offline',
    unauthorized: 'token needed',
  };
  setText($('#conn-text'), text[conn.state]);
  $('#reconnect').hidden = conn.state !== 'reconnecting' && conn.state !== 'offline';
  setText($('#token-button'), conn.state === 'unauthorized' ? 'Enter token' : token.get() ? 'Token ✓' : 'Token');
}

function renderBanner(): void {
  const el = $('#banner');
  el.hidden = banner === null;
  if (!banner) return;
  el.dataset.state = banner.state;
  el.className = `banner tone-${banner.state === 'rollback_failed' ? 'error' : 'warn'}`;
  setText($('#banner-title'), banner.title);
  setText($('#banner-message'), banner.message);
}

let queued = false;
/** Coalesces renders: every state change calls this; the DOM is updated once per task. */
function render(): void {
  if (queued) return;
  queued = true;
  queueMicrotask(() => {
    queued = false;
    renderConn();
    renderBanner();
    renderComponents();
    renderTimeline();
    renderHistory();
  });
}

// ---------------------------------------------------------------------------------------------
// Start

function start(): void {
  $('#check').addEventListener('click', () => void checkNow());
  $('#update-all').addEventListener('click', () => void updateAll());
  $('#reconnect').addEventListener('click', () => feed.reconnectNow());
  $('#banner-close').addEventListener('click', hideBanner);
  $('#token-button').addEventListener('click', () => askToken(token.get() ? 'Change or forget the stored token.' : 'Enter the API token, if this updater has one.'));
  const dialog = $<HTMLDialogElement>('#token-dialog');
  dialog.addEventListener('close', tokenClosed);
  $('#token-forget').addEventListener('click', () => dialog.close('forget'));
  $('#token-cancel').addEventListener('click', () => dialog.close('cancel'));
  $('#more').addEventListener('click', () => {
    historyLimit += 20;
    void refreshSoon();
  });
  setInterval(render, 30_000); // "checked 2 minutes ago"
  void refreshSoon();
  feed.connect();
  void startFleet();
}

start();

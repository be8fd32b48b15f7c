/** Tiny DOM and formatting helpers: no framework, just typed element creation. */

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined>;

/** `h('button', {class: 'x', 'data-testid': 'y'}, 'text')`. `false`/`null` attributes are left out. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, ...children);
  return el;
}

export function append(el: Element, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'number' ? String(c) : c);
  }
}

export function $<T extends HTMLElement = HTMLElement>(selector: string, root: ParentNode = document): T {
  const el = root.querySelector<T>(selector);
  if (!el) throw new Error(`missing element ${selector}`);
  return el;
}

/** Sets text only when it changed (keeps screen readers from re-announcing, and selection intact). */
export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

export const clock = (iso: string): string => timeFormat.format(new Date(iso));
export const fullDate = (iso: string): string => dateTimeFormat.format(new Date(iso));

/** "2 minutes ago", "yesterday". */
export function ago(iso: string, now = Date.now()): string {
  const s = Math.round((new Date(iso).getTime() - now) / 1000);
  const abs = Math.abs(s);
  if (abs < 45) return 'just now';
  if (abs < 3600) return relative.format(Math.round(s / 60), 'minute');
  if (abs < 86400) return relative.format(Math.round(s / 3600), 'hour');
  return relative.format(Math.round(s / 86400), 'day');
}

/** "0.4 s", "12 s", "3 min 5 s". */
export function duration(ms: number): string {
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** Release notes are Markdown from GitHub: shown as text, with headings and bullets kept. Never as HTML. */
export function notes(markdown: string): HTMLElement {
  const box = h('div', { class: 'notes' });
  let list: HTMLUListElement | null = null;
  for (const raw of markdown.split(/\r?\n/)) {
    const line = raw.trim();
    const bullet = /^[-*+]\s+(.*)$/.exec(line);
    if (bullet) {
      list ??= box.appendChild(h('ul'));
      list.append(h('li', {}, bullet[1] ?? ''));
      continue;
    }
    list = null;
    if (line === '') continue;
    const heading = /^#{1,6}\s+(.*)$/.exec(line);
    box.append(heading ? h('p', { class: 'notes-heading' }, heading[1] ?? '') : h('p', {}, line));
  }
  return box;
}

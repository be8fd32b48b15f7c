/**
 * A local stand-in for GitHub on 127.0.0.1 (tests, benches and the embedded demo) that answers with the REST API's real shapes: release lists
 * (newest first, `Link` pagination), `releases/latest`, `releases/tags/{tag}`, asset
 * downloads, raw files under `/raw`, each release's page for people at `/{owner}/{name}/releases/tag/{tag}`
 * (its `html_url`, so that a release link works offline), strong ETags with 304s, `X-RateLimit-*` headers, and
 * switchable faults (rate limits, 5xx, hanging, missing repositories, required tokens).
 * Every request is recorded with the status it got, so tests count what reached it.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export interface FakeAssetSpec {
  name: string;
  content: Buffer | string;
  contentType?: string;
  /** Send the full Content-Length but drop the connection after this many bytes. */
  truncateAt?: number;
  /** Send this many bytes, then stall forever (the socket stays open). */
  stallAt?: number;
}

export interface FakeReleaseSpec {
  tag: string;
  name?: string | null;
  draft?: boolean;
  prerelease?: boolean;
  body?: string;
  assets?: FakeAssetSpec[];
  /** ISO; default: one minute after the previously added release, so later adds are newer. */
  publishedAt?: string;
}

export interface SeenRequest {
  method: string;
  /** Path and query, as sent. */
  path: string;
  headers: IncomingHttpHeaders;
  /** The status answered; undefined while (or because) the request hangs. */
  status?: number;
}

export interface FakeGitHub {
  url: string;
  apiUrl: string;
  rawUrl: string;
  requests: SeenRequest[];
  addRelease(repo: string, spec: FakeReleaseSpec): void;
  setRaw(repo: string, ref: string, path: string, content: string | null): void;
  /** Rate limit the API until `until` (real time), or lift it with null. */
  rateLimit(options: { until: Date; kind: 'primary' | 'retry-after' } | null): void;
  failNext(n: number, status: number): void;
  hang(on: boolean): void;
  repoMissing(repo: string): void;
  requireToken(token: string | null): void;
  resetRequests(): void;
  close(): Promise<void>;
}

interface StoredAsset {
  id: number;
  name: string;
  content: Buffer;
  contentType: string;
  truncateAt?: number;
  stallAt?: number;
}

interface StoredRelease {
  id: number;
  tag: string;
  name: string | null;
  draft: boolean;
  prerelease: boolean;
  body: string;
  createdAt: string;
  publishedAt: string | null;
  assets: StoredAsset[];
}

const RATE_LIMIT = 5000;

/** Starts the server on 127.0.0.1 (`port` 0, the default, picks a free one; a taken port falls back to 0). */
export async function startFakeGitHub(options: { port?: number } = {}): Promise<FakeGitHub> {
  const releases = new Map<string, StoredRelease[]>();
  const raw = new Map<string, string>();
  const missing = new Set<string>();
  const requests: SeenRequest[] = [];
  let limited: { until: Date; kind: 'primary' | 'retry-after' } | null = null;
  let failures = { left: 0, status: 500 };
  let hanging = false;
  let token: string | null = null;
  let nextId = 1000;
  let clock = Date.parse('2026-01-01T00:00:00Z');
  let used = 0;
  let base = '';

  const send = (res: ServerResponse, seen: SeenRequest, status: number, body: string | Buffer, headers: Record<string, string> = {}) => {
    seen.status = status;
    const data = typeof body === 'string' ? Buffer.from(body) : body;
    res.writeHead(status, { 'content-length': String(data.length), ...headers });
    res.end(data);
  };

  const rateHeaders = (): Record<string, string> => {
    const primary = limited?.kind === 'primary' && limited.until.getTime() > Date.now();
    const reset = primary ? limited!.until.getTime() : Date.now() + 3600_000;
    return {
      'x-ratelimit-limit': String(RATE_LIMIT),
      'x-ratelimit-remaining': primary ? '0' : String(Math.max(0, RATE_LIMIT - used)),
      'x-ratelimit-reset': String(Math.ceil(reset / 1000)),
      'x-ratelimit-used': String(used),
      'x-ratelimit-resource': 'core',
    };
  };

  const message = (text: string, status: number) =>
    JSON.stringify({ message: text, documentation_url: 'https://docs.github.com/rest', status: String(status) });

  /** A JSON answer with a strong ETag from the body, 304 when the client already has it. */
  const sendJson = (req: IncomingMessage, res: ServerResponse, seen: SeenRequest, value: unknown, extra: Record<string, string> = {}) => {
    const body = JSON.stringify(value);
    const etag = `"${createHash('sha256').update(body).digest('hex').slice(0, 40)}"`;
    const tags = (req.headers['if-none-match'] ?? '').split(',').map((t) => t.trim().replace(/^W\//, ''));
    const headers = { ...rateHeaders(), etag, 'cache-control': 'private, max-age=60, s-maxage=60', vary: 'Accept, Authorization' };
    if (tags.includes(etag) || tags.includes('*')) {
      // Like any 304: no body, and no Link header (clients must remember pagination).
      seen.status = 304;
      res.writeHead(304, headers);
      res.end();
      return;
    }
    send(res, seen, 200, body, { ...headers, 'content-type': 'application/json; charset=utf-8', ...extra });
  };

  const assetJson = (repo: string, r: StoredRelease, a: StoredAsset) => ({
    url: `${base}/repos/${repo}/releases/assets/${a.id}`,
    id: a.id,
    node_id: `RA_${a.id}`,
    name: a.name,
    label: '',
    uploader: { login: 'releaser', id: 1, type: 'User' },
    content_type: a.contentType,
    state: 'uploaded',
    size: a.content.length,
    download_count: 0,
    created_at: r.createdAt,
    updated_at: r.createdAt,
    browser_download_url: `${base}/download/${repo}/${encodeURIComponent(r.tag)}/${encodeURIComponent(a.name)}`,
  });

  const releaseJson = (repo: string, r: StoredRelease) => ({
    url: `${base}/repos/${repo}/releases/${r.id}`,
    assets_url: `${base}/repos/${repo}/releases/${r.id}/assets`,
    upload_url: `${base}/repos/${repo}/releases/${r.id}/assets{?name,label}`,
    // The release's page, served here as GitHub's is there (`/{owner}/{name}/releases/tag/{tag}`): a link that works offline.
    html_url: `${base}/${repo}/releases/tag/${encodeURIComponent(r.tag)}`,
    id: r.id,
    node_id: `RE_${r.id}`,
    author: { login: 'releaser', id: 1, type: 'User' },
    tag_name: r.tag,
    target_commitish: 'main',
    name: r.name,
    draft: r.draft,
    prerelease: r.prerelease,
    created_at: r.createdAt,
    published_at: r.publishedAt,
    assets: r.assets.map((a) => assetJson(repo, r, a)),
    tarball_url: `${base}/repos/${repo}/tarball/${encodeURIComponent(r.tag)}`,
    zipball_url: `${base}/repos/${repo}/zipball/${encodeURIComponent(r.tag)}`,
    body: r.body,
  });

  /** GitHub's order: drafts (unpublished) first, then newest published first. */
  const sorted = (repo: string) =>
    [...(releases.get(repo) ?? [])].sort((a, b) => {
      if (a.publishedAt === null || b.publishedAt === null) return a.publishedAt === null ? (b.publishedAt === null ? b.id - a.id : -1) : 1;
      return Date.parse(b.publishedAt) - Date.parse(a.publishedAt) || b.id - a.id;
    });

  const list = (req: IncomingMessage, res: ServerResponse, seen: SeenRequest, repo: string, query: URLSearchParams) => {
    const perPage = Math.min(100, Math.max(1, Number(query.get('per_page')) || 30));
    const page = Math.max(1, Number(query.get('page')) || 1);
    const all = sorted(repo);
    const last = Math.max(1, Math.ceil(all.length / perPage));
    const pageUrl = (n: number) => `<${base}/repos/${repo}/releases?per_page=${perPage}&page=${n}>`;
    const links: string[] = [];
    if (page > 1) links.push(`${pageUrl(page - 1)}; rel="prev"`);
    if (page < last) links.push(`${pageUrl(page + 1)}; rel="next"`, `${pageUrl(last)}; rel="last"`);
    if (page > 1) links.push(`${pageUrl(1)}; rel="first"`);
    const items = all.slice((page - 1) * perPage, page * perPage).map((r) => releaseJson(repo, r));
    sendJson(req, res, seen, items, links.length > 0 ? { link: links.join(', ') } : {});
  };

  const api = (req: IncomingMessage, res: ServerResponse, seen: SeenRequest, url: URL) => {
    used++;
    if (limited && limited.until.getTime() > Date.now()) {
      if (limited.kind === 'primary') {
        return send(res, seen, 403, message('API rate limit exceeded for 127.0.0.1.', 403), { ...rateHeaders(), 'content-type': 'application/json' });
      }
      const seconds = Math.ceil((limited.until.getTime() - Date.now()) / 1000);
      return send(res, seen, 429, message('You have exceeded a secondary rate limit.', 429), { ...rateHeaders(), 'retry-after': String(seconds), 'content-type': 'application/json' });
    }
    if (token !== null && req.headers.authorization !== `Bearer ${token}`) {
      return send(res, seen, 401, message('Bad credentials', 401), { ...rateHeaders(), 'content-type': 'application/json' });
    }
    const notFound = () => send(res, seen, 404, message('Not Found', 404), { ...rateHeaders(), 'content-type': 'application/json' });
    const m = /^\/repos\/([^/]+)\/([^/]+)\/releases(?:\/(.*))?$/.exec(url.pathname);
    if (!m) return notFound();
    const repo = `${m[1]}/${m[2]}`;
    const rest = m[3];
    if (missing.has(repo)) return notFound();
    const published = sorted(repo).filter((r) => !r.draft);
    if (rest === undefined) return list(req, res, seen, repo, url.searchParams);
    if (rest === 'latest') {
      const latest = published.find((r) => !r.prerelease);
      return latest ? sendJson(req, res, seen, releaseJson(repo, latest)) : notFound();
    }
    const tag = /^tags\/(.+)$/.exec(rest);
    if (tag) {
      const found = published.find((r) => r.tag === decodeURIComponent(tag[1]!));
      return found ? sendJson(req, res, seen, releaseJson(repo, found)) : notFound();
    }
    const asset = /^assets\/(\d+)$/.exec(rest);
    if (asset) {
      for (const r of releases.get(repo) ?? []) {
        const a = r.assets.find((x) => x.id === Number(asset[1]));
        if (!a) continue;
        const json = assetJson(repo, r, a);
        if (req.headers.accept === 'application/octet-stream') {
          return send(res, seen, 302, '', { location: json.browser_download_url });
        }
        return sendJson(req, res, seen, json);
      }
    }
    return notFound();
  };

  const download = (res: ServerResponse, seen: SeenRequest, parts: string[]) => {
    const [owner, name, tag, file] = parts.map(decodeURIComponent);
    const r = (releases.get(`${owner}/${name}`) ?? []).find((x) => x.tag === tag);
    const a = r?.assets.find((x) => x.name === file);
    if (!a) return send(res, seen, 404, 'Not Found', { 'content-type': 'text/plain' });
    const cut = a.truncateAt ?? a.stallAt;
    if (cut !== undefined) {
      seen.status = 200;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(a.content.length) });
      res.write(a.content.subarray(0, cut), () => {
        if (a.truncateAt !== undefined) res.socket?.destroy();
      });
      return;
    }
    return send(res, seen, 200, a.content, { 'content-type': 'application/octet-stream' });
  };

  const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

  /** A release's page for people (what `html_url` points at): its name, notes and assets. */
  const page = (res: ServerResponse, seen: SeenRequest, repo: string, tag: string) => {
    const r = (releases.get(repo) ?? []).find((x) => x.tag === tag && !x.draft);
    if (!r) return send(res, seen, 404, 'Not Found', { 'content-type': 'text/plain' });
    const assets = r.assets.map((a) => `<li><a href="${escapeHtml(assetJson(repo, r, a).browser_download_url)}">${escapeHtml(a.name)}</a> (${a.content.length} bytes)</li>`).join('\n');
    const html = `<!doctype html>
<html><head><meta charset="utf-8"><title>${escapeHtml(`${r.name ?? r.tag} · ${repo}`)}</title></head>
<body>
<h1>${escapeHtml(r.name ?? r.tag)}</h1>
<p>${escapeHtml(repo)}, tag ${escapeHtml(r.tag)}${r.prerelease ? ' (prerelease)' : ''}, published ${escapeHtml(r.publishedAt ?? '')}. Served by the updater's local stand-in for GitHub.</p>
<pre>${escapeHtml(r.body)}</pre>
<h2>Assets</h2>
<ul>
${assets}
</ul>
</body></html>
`;
    return send(res, seen, 200, html, { 'content-type': 'text/html; charset=utf-8' });
  };

  const server = createServer((req, res) => {
    const seen: SeenRequest = { method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers };
    requests.push(seen);
    if (hanging) return; // never answer; close() destroys the socket
    if (failures.left > 0) {
      failures.left--;
      return send(res, seen, failures.status, message('Server Error', failures.status), { ...rateHeaders(), 'content-type': 'application/json' });
    }
    const url = new URL(req.url ?? '/', base);
    if (url.pathname.startsWith('/raw/')) {
      const key = url.pathname.slice('/raw/'.length).split('/').map(decodeURIComponent).join('/');
      const content = raw.get(key);
      return content === undefined
        ? send(res, seen, 404, '404: Not Found', { 'content-type': 'text/plain; charset=utf-8' })
        : send(res, seen, 200, content, { 'content-type': 'text/plain; charset=utf-8' });
    }
    if (url.pathname.startsWith('/download/')) return download(res, seen, url.pathname.split('/').slice(2));
    const release = /^\/([^/]+)\/([^/]+)\/releases\/tag\/([^/]+)$/.exec(url.pathname);
    if (release && release[1] !== 'repos' && req.method === 'GET') {
      let tag: string;
      try {
        tag = decodeURIComponent(release[3]!);
      } catch {
        return send(res, seen, 404, 'Not Found', { 'content-type': 'text/plain' });
      }
      return page(res, seen, `${release[1]}/${release[2]}`, tag);
    }
    return api(req, res, seen, url);
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE' && options.port) server.listen(0, '127.0.0.1', resolve);
      else reject(error);
    };
    server.once('error', onError);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', onError);
      resolve();
    });
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: base,
    apiUrl: base,
    rawUrl: `${base}/raw`,
    requests,
    addRelease(repo, spec) {
      clock += 60_000;
      const createdAt = new Date(clock).toISOString();
      const draft = spec.draft ?? false;
      const list = releases.get(repo) ?? [];
      list.push({
        id: nextId++,
        tag: spec.tag,
        name: spec.name === undefined ? spec.tag : spec.name,
        draft,
        prerelease: spec.prerelease ?? false,
        body: spec.body ?? '',
        createdAt,
        publishedAt: draft ? null : (spec.publishedAt ?? createdAt),
        assets: (spec.assets ?? []).map((a) => ({
          id: nextId++,
          name: a.name,
          content: typeof a.content === 'string' ? Buffer.from(a.content) : a.content,
          contentType: a.contentType ?? 'application/octet-stream',
          truncateAt: a.truncateAt,
          stallAt: a.stallAt,
        })),
      });
      releases.set(repo, list);
    },
    setRaw(repo, ref, path, content) {
      const key = `${repo}/${ref}/${path}`;
      if (content === null) raw.delete(key);
      else raw.set(key, content);
    },
    rateLimit(options) {
      limited = options;
    },
    failNext(n, status) {
      failures = { left: n, status };
    },
    hang(on) {
      hanging = on;
    },
    repoMissing(repo) {
      missing.add(repo);
    },
    requireToken(value) {
      token = value;
    },
    resetRequests() {
      requests.length = 0;
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/**
 * HTTP as a hostile or unusual client speaks it: any Host and Origin (fetch cannot set Host),
 * and raw sockets that send part of a request and hold it, to see what the server answers and
 * whether it closes the connection itself.
 */
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request with exactly these headers (Host included when given). Never throws on a status. */
export function send(url: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', headers: options.headers ?? {}, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** `{error: {code, message}}` and nothing else, with a non-empty message: the code. */
export function errorCode(body: string): string {
  const parsed = JSON.parse(body) as { error?: { code?: unknown; message?: unknown } };
  const keys = Object.keys(parsed);
  if (keys.length !== 1 || typeof parsed.error?.code !== 'string' || typeof parsed.error.message !== 'string' || parsed.error.message === '') {
    throw new Error(`not the contract's error shape: ${body.slice(0, 300)}`);
  }
  return parsed.error.code;
}

/** A raw connection: what the server sent so far, and whether it closed the connection. */
export interface RawConnection {
  socket: Socket;
  received: () => string;
  /** Resolves when the server ends or closes the connection. */
  closed: Promise<void>;
  isClosed: () => boolean;
}

export function openRaw(port: number, first: string | Buffer): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let ended = false;
    const closed = new Promise<void>((done) => {
      const end = () => {
        ended = true;
        done();
      };
      socket.once('end', end);
      socket.once('close', end);
    });
    socket.on('data', (b) => (text += b.toString('latin1')));
    socket.on('error', () => undefined); // a reset is a close, seen through `closed`
    socket.once('connect', () => {
      socket.write(first, () => resolve({ socket, received: () => text, closed, isClosed: () => ended }));
    });
    socket.once('error', reject);
  });
}

/** Waits for `p`, at most `ms`: true when it settled in time. */
export async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Splits one raw HTTP/1.1 response into its status, headers and body. */
export function parseResponse(text: string): Answer {
  const split = text.indexOf('\r\n\r\n');
  if (split < 0) throw new Error(`no complete response head in ${JSON.stringify(text.slice(0, 200))}`);
  const [statusLine, ...lines] = text.slice(0, split).split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '');
  if (!m) throw new Error(`not an HTTP response: ${JSON.stringify(statusLine)}`);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = text.slice(split + 4);
  if (headers['content-length'] !== undefined) body = body.slice(0, Number(headers['content-length']));
  return { status: Number(m[1]), headers, body };
}

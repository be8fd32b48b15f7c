/**
 * An Azure Web PubSub connection string, `Endpoint=https://NAME.webpubsub.azure.com;AccessKey=KEY;
 * Version=1.0;` (keys in any case and order; `Port=` optional, as the service's SDKs read it).
 * Problems are told without the value: the AccessKey is a secret.
 */
export interface ConnectionString {
  /** `https://NAME.webpubsub.azure.com` (with `:port` when given), no trailing slash. */
  endpoint: string;
  accessKey: string;
}

export function parseConnectionString(text: string): ConnectionString | { problem: string } {
  const fields = new Map<string, string>();
  for (const part of text.split(';')) {
    const at = part.indexOf('=');
    if (part.trim() === '') continue;
    if (at <= 0) return { problem: 'is not a connection string of `Key=value;` pairs' };
    fields.set(part.slice(0, at).trim().toLowerCase(), part.slice(at + 1).trim());
  }
  const endpoint = fields.get('endpoint');
  const accessKey = fields.get('accesskey');
  if (!endpoint) return { problem: 'has no Endpoint= (expected Endpoint=https://NAME.webpubsub.azure.com;AccessKey=KEY;Version=1.0;)' };
  if (!accessKey) return { problem: 'has no AccessKey= (expected Endpoint=https://NAME.webpubsub.azure.com;AccessKey=KEY;Version=1.0;)' };
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return { problem: 'has an Endpoint that is not a URL' };
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return { problem: `has an Endpoint that is not http(s) (${url.protocol})` };
  const port = fields.get('port');
  if (port !== undefined) {
    if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) return { problem: 'has a Port that is not a port number' };
    url.port = port;
  }
  return { endpoint: url.origin, accessKey };
}

#!/usr/bin/env node
// A dependency-free static file server for `npm start`, the browser tests and the browser bench.
// Serves the repository root on 127.0.0.1 (a secure context, so WebGPU, crypto.subtle and
// the Cache API all work): only what the page, the tests' page and the bench load (not .git,
// target/ or the Python environment), each response with the page's Content-Security-Policy.

import { createServer } from 'node:http';
import { createReadStream, readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT } from './lib.mjs';

const MIME_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.bpk': 'application/octet-stream',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.bmp': 'image/bmp',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.ts': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

/**
 * What of the repository is served: the page, its scripts, the package, the wasm build, the
 * models, the tests' blank page, and the peer the browser bench runs. Anything else is a 404.
 */
export const SERVED = [
  '/',
  '/index.html',
  '/sw.js',
  '/manifest.webmanifest',
  '/demo/',
  '/www/',
  '/pkg/',
  '/models/',
  '/tests/browser/blank.html',
  '/node_modules/onnxruntime-web/dist/',
];

const isServed = (urlPath, allowed) =>
  allowed.some((prefix) => (prefix.endsWith('/') && prefix !== '/' ? urlPath.startsWith(prefix) : urlPath === prefix));

/**
 * The page's Content-Security-Policy, as its meta tag declares it (index.html keeps the one
 * copy), with what only a header can carry: no other site may frame the page.
 */
export function pagePolicy(root = ROOT) {
  const html = readFileSync(join(root, 'index.html'), 'utf8');
  const meta = /<meta http-equiv="Content-Security-Policy"\s+content="([^"]+)"/.exec(html);
  if (!meta) throw new Error('index.html declares no Content-Security-Policy');
  return `${meta[1]}; frame-ancestors 'none'`;
}

/**
 * What makes a page cross-origin isolated, which browsers require before a page may share
 * memory between threads: the package's CPU engine then runs on several (its threaded build).
 * An app that embeds the package sends the same two headers with its pages for that; without
 * them the engine runs on one thread. (`require-corp` also means that whatever the page loads
 * from other origins must allow it with CORS or `Cross-Origin-Resource-Policy`.)
 */
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

/** Maps a request path to a file under `root`, or null when it would escape it. */
function fileFor(root, urlPath) {
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  const path = normalize(join(root, decoded));
  if (path !== root && !path.startsWith(root + sep)) return null;
  return path;
}

function decodeURIComponentOr(path) {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

/**
 * The byte range a `Range: bytes=a-b` header asks of a `size`-byte file, `{ start, end }`
 * inclusive; null for no header; 'unsatisfiable' for a range outside the file. (One range:
 * resuming a download never asks for more.)
 */
function rangeOf(header, size) {
  if (!header) return null;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return 'unsatisfiable';
  let start;
  let end;
  if (match[1] === '') {
    start = Math.max(0, size - Number(match[2]));
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  return start > end || start >= size ? 'unsatisfiable' : { start, end };
}

/**
 * Starts the server. `port: 0` picks a free port. `onRequest(method, path, headers)` sees every
 * request (the browser tests use it to prove what reached the server); `onSent(path, bytes)`
 * how many body bytes each response wrote, cut or not. `headers` go on every file served (the
 * package tests send a Content-Security-Policy this way); serving the repository, they default
 * to the page's policy and `nosniff`, and only the `SERVED` paths are served (`only`: another
 * list, or null for everything under `root`). `isolated`: the `ISOLATION_HEADERS` too. Files are served whole or, for a
 * `Range` request, in part (206), so that an interrupted download can resume.
 * Resolves to `{ server, url, close(), cutOnce(path, fraction) }`: `cutOnce` makes the next
 * response for `path` drop its connection after `fraction` of the file, as a network that
 * fails mid-download would (the browser tests' fault).
 */
export async function startServer({
  root = ROOT,
  host = '127.0.0.1',
  port = 8080,
  onRequest,
  onSent,
  headers = resolve(root) === resolve(ROOT) ? { 'Content-Security-Policy': pagePolicy(root), 'X-Content-Type-Options': 'nosniff' } : {},
  only = resolve(root) === resolve(ROOT) ? SERVED : null,
  isolated = false,
} = {}) {
  if (isolated) headers = { ...headers, ...ISOLATION_HEADERS };
  const rootDir = resolve(root);
  const cuts = new Map(); // path → the fraction of the file after which its next response is cut
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    onRequest?.(req.method, url.pathname, req.headers);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    let path = fileFor(rootDir, url.pathname);
    if (!path) {
      res.writeHead(403).end('forbidden');
      return;
    }
    if (only && !isServed(normalize(decodeURIComponentOr(url.pathname)), only)) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8', ...headers }).end(`not found: ${url.pathname}`);
      return;
    }
    let info = await stat(path).catch(() => null);
    if (info?.isDirectory()) {
      path = join(path, 'index.html');
      info = await stat(path).catch(() => null);
    }
    if (!info?.isFile()) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8', ...headers }).end(`not found: ${url.pathname}`);
      return;
    }
    // A validator, as every real static host sends: the browser revalidates (Cache-Control:
    // no-cache) and gets a 304 for an unchanged file, so a later visit reads the wasm from its
    // HTTP cache, where V8 also keeps the module's compiled code.
    const etag = `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
    if (req.headers['if-none-match'] === etag && !req.headers.range) {
      res.writeHead(304, { ETag: etag, 'Cache-Control': 'no-cache', ...headers }).end();
      return;
    }
    const range = rangeOf(req.headers.range, info.size);
    if (range === 'unsatisfiable') {
      res.writeHead(416, { 'Content-Range': `bytes */${info.size}` }).end();
      return;
    }
    const { start, end } = range ?? { start: 0, end: info.size - 1 };
    const length = info.size === 0 ? 0 : end - start + 1;
    res.writeHead(range ? 206 : 200, {
      'Content-Type': MIME_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream',
      'Content-Length': length,
      'Accept-Ranges': 'bytes',
      ETag: etag,
      'Last-Modified': info.mtime.toUTCString(),
      ...(range && { 'Content-Range': `bytes ${start}-${end}/${info.size}` }),
      // Always revalidate: the model cache in the page is the Cache API, not HTTP caching.
      'Cache-Control': 'no-cache',
      ...headers,
    });
    if (req.method === 'HEAD' || length === 0) {
      res.end();
      return;
    }
    const cut = cuts.get(url.pathname);
    cuts.delete(url.pathname);
    let sent = 0;
    const stream = createReadStream(path, { start, end });
    res.on('close', () => {
      stream.destroy();
      onSent?.(url.pathname, sent);
    });
    stream.on('data', (chunk) => {
      if (cut !== undefined && sent + chunk.length > cut * info.size - start) {
        const part = Math.max(0, Math.floor(cut * info.size - start - sent));
        sent += part;
        stream.destroy();
        // Whatever was written reaches the socket first; then the connection drops.
        res.write(chunk.subarray(0, part), () => res.socket?.destroy());
        return;
      }
      sent += chunk.length;
      if (!res.write(chunk)) {
        stream.pause();
        res.once('drain', () => stream.resume());
      }
    });
    stream.on('end', () => res.end());
    stream.on('error', () => res.destroy());
  });
  await new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, ok);
  });
  const { port: actualPort } = server.address();
  const url = `http://${host}:${actualPort}/`;
  return {
    server,
    url,
    cutOnce: (path, fraction) => cuts.set(path, fraction),
    close: () =>
      new Promise((ok) => {
        server.closeAllConnections?.();
        server.close(() => ok());
      }),
  };
}

const isMain = process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const port = Number(process.env.PORT ?? process.argv[2] ?? 8080);
  const { url } = await startServer({ port, isolated: true });
  console.log(`glimpse: serving ${ROOT} at ${url}`);
}

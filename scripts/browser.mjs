// The browser side shared by the browser tests and `npm run bench:browser`: the repository
// served on 127.0.0.1 with every request recorded, and a headless Chromium with a fresh profile.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT } from './lib.mjs';
import { startServer } from './serve.mjs';

/** Debian's chromium, or the one CHROMIUM names. */
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/**
 * Serves the repo and records every request that reaches the server: `requests` (paths),
 * `ranges` (`{ path, range }` for each request with a Range header) and `sent` (body bytes
 * written per path). Resolves to `{ url, requests, ranges, sent, cutOnce, close }` (`cutOnce`:
 * scripts/serve.mjs). `headers`: instead of the page's Content-Security-Policy and nosniff;
 * `isolated`: the page cross-origin isolated too (scripts/serve.mjs's ISOLATION_HEADERS).
 */
export async function serve({ headers, isolated = false } = {}) {
  const requests = [];
  const ranges = [];
  const sent = new Map();
  const server = await startServer({
    root: ROOT,
    port: 0,
    ...(headers && { headers }),
    isolated,
    onRequest: (method, path, headers) => {
      requests.push(path);
      if (headers.range) ranges.push({ path, range: headers.range });
    },
    onSent: (path, bytes) => sent.set(path, (sent.get(path) ?? 0) + bytes),
  });
  return { url: server.url, requests, ranges, sent, cutOnce: server.cutOnce, close: server.close };
}

const BASE_FLAGS = [
  '--no-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** WebGPU on SwiftShader, the GPU emulated on the CPU, when there is no real GPU. */
const WEBGPU_FLAGS = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader', '--use-webgpu-adapter=swiftshader'];

/**
 * A Chromium with a fresh profile (or `profileDir`, to reuse one).
 * `webgpu`: pass --enable-unsafe-webgpu (WebGPU on SwiftShader). `camera`: null, 'deny', or
 * the path of a .y4m clip to serve as the camera. Records every request the page makes in
 * `pageRequests` (URLs), service workers and workers included.
 */
export async function openBrowser({ webgpu = false, camera = null, profileDir = null } = {}) {
  const userDataDir = profileDir ?? mkdtempSync(join(tmpdir(), 'glimpse-chromium-'));
  const args = [...BASE_FLAGS];
  if (webgpu) args.push(...WEBGPU_FLAGS);
  if (camera === 'deny') args.push('--use-fake-device-for-media-stream', '--deny-permission-prompts');
  else if (camera) {
    args.push('--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', `--use-file-for-fake-video-capture=${camera}`);
  }
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args,
  });
  const pageRequests = [];
  context.on('request', (request) => pageRequests.push(request.url()));
  const page = context.pages()[0] ?? (await context.newPage());
  const consoleLines = [];
  page.on('console', (message) => consoleLines.push(`${message.type()}: ${message.text()}`));
  page.on('pageerror', (error) => consoleLines.push(`pageerror: ${error.message}`));
  return {
    context,
    page,
    pageRequests,
    consoleLines,
    userDataDir,
    close: async ({ keepProfile = false } = {}) => {
      await context.close();
      if (!keepProfile && !profileDir) rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

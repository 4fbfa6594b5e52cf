// What the package needs when it runs in Node.js (20+) rather than a browser: model files and
// the wasm module read from disk. Node's modules are reached through
// `process.getBuiltinModule`, a plain call, so bundlers building for the browser never meet a
// `node:` import.

/** True in Node.js (and not in a browser, nor in a browser's worker). */
export const inNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string' && typeof window === 'undefined';

function builtin(name) {
  if (typeof process.getBuiltinModule !== 'function') {
    throw new Error(`Node.js ${process.versions.node} is too old: @seed/glimpse needs 20.16 or later`);
  }
  return process.getBuiltinModule(name);
}

/** The models folder as a URL: a path (absolute, or relative to the working directory) or a URL. */
export function modelsDirUrl(models) {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(models) || models.startsWith('file:')) return new URL(models);
  return builtin('node:url').pathToFileURL(builtin('node:path').resolve(models));
}

/**
 * A file: URL read as fetch would answer it (Node's fetch does not read files): a streamed
 * body with its Content-Length, or a 404 when the file is missing.
 */
export async function fileResponse(url) {
  const { stat } = builtin('node:fs/promises');
  const path = builtin('node:url').fileURLToPath(url);
  let info;
  try {
    info = await stat(path);
  } catch {
    return new Response(null, { status: 404 });
  }
  const stream = builtin('node:stream').Readable.toWeb(builtin('node:fs').createReadStream(path));
  return new Response(stream, { headers: { 'Content-Length': String(info.size) } });
}

/** The wasm module's bytes, from beside the package's JS (pkg/glimpse_bg.wasm). */
export function wasmBytes() {
  // Built from parts so that bundlers do not take it for an asset to emit a second time.
  const url = new URL(['..', 'pkg', 'glimpse_bg.wasm'].join('/'), import.meta.url);
  return builtin('node:fs/promises').readFile(url);
}

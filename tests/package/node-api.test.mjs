// The package's API in Node.js, from the repository's www/ (the packed tarball's Node.js run is
// in bundlers.test.mjs): RGBA pixels classify, and bad input gets the package's typed errors.
// Budget: under 30 s on the 2-core development machine (measured 2026-11-30: 2 s).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ModelLoadError, UnsupportedImageError, Glimpse } from '../../www/glimpse.js';
import { ROOT, requireBuiltArtifacts } from '../browser/helpers.mjs';

let glimpse;
before(async () => {
  requireBuiltArtifacts();
  glimpse = await Glimpse.load({ models: join(ROOT, 'models') });
});
after(() => glimpse?.dispose());

test('in Node.js the engine runs on the CPU and says why not WebGPU', () => {
  assert.equal(glimpse.backend, 'cpu');
  assert.match(glimpse.fallbackReason, /WebGPU/);
});

test('RGBA pixels are classified like ImageData, in any typed array', async () => {
  const [width, height] = [64, 48];
  const data = new Uint8ClampedArray(width * height * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 7) % 256));
  const { top } = await glimpse.classify({ width, height, data }, { topK: 3 });
  assert.equal(top.length, 3);
  const again = await glimpse.classify({ width, height, data: new Uint8Array(data.buffer) }, { topK: 3 });
  assert.deepEqual(
    again.top.map((p) => p.index),
    top.map((p) => p.index),
  );
});

test('bad pictures reject with UnsupportedImageError and a reason', async () => {
  const cases = [
    [{ width: 4, height: 4, data: new Uint8Array(10) }, /4×4 needs 64 bytes, got 10/],
    [new Uint8Array(0), /empty/],
    [Buffer.from('this is not an image at all'), /./],
    ['photo.jpg', /takes an <img>/],
  ];
  for (const [source, message] of cases) {
    await assert.rejects(glimpse.classify(source), (error) => error instanceof UnsupportedImageError && message.test(error.message));
  }
});

test('a models folder without a manifest is a ModelLoadError that says what to do', async (t) => {
  const empty = mkdtempSync(join(tmpdir(), 'glimpse-no-models-'));
  t.after(() => rmSync(empty, { recursive: true, force: true }));
  await assert.rejects(Glimpse.load({ models: empty }), (error) => error instanceof ModelLoadError && /manifest\.json.*not found/.test(error.message));
});

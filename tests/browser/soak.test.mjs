// The soak's short version (`npm run soak` is the long one, not run here): 300 camera frames
// through the API with labels and a taught set on, 10 captions cancelled at their first word,
// 10 example add/remove cycles. Memory stays flat after each phase's warm-up, no engine object
// is left alive, and every frame result arrives once, in order. The frame rate is reported,
// not held to a limit here (a short run on a shared machine does not measure it), and growth
// under 256 KiB is taken for the collector's noise.
// Budget: under 4 minutes on the 2-core development machine (measured 2026-11-30: see the diagnostic).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSoak } from '../../scripts/soak.mjs';
import { requireBuiltArtifacts } from './helpers.mjs';

test('a short soak keeps memory flat and every frame result, once and in order', { timeout: 240_000 }, async (t) => {
  requireBuiltArtifacts();
  const started = Date.now();
  const { failures, samples } = await runSoak({
    frames: 300,
    every: 100,
    captions: 10,
    cycles: 10,
    checkRate: false,
    noise: 256 * 1024,
    log: (line) => t.diagnostic(line),
  });
  t.diagnostic(`${samples.length} samples in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  assert.deepEqual(failures, []);
});

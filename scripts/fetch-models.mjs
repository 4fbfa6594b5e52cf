#!/usr/bin/env node
// npm run fetch-models: the native CLI downloads, verifies and converts the weights into
// ./models (manifest.json, the .bpk files, sample photos). GLIMPSE_BIN may name a built
// `glimpse` binary; otherwise cargo builds and runs it.

import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const extra = process.argv.slice(2);
const [command, args] = process.env.GLIMPSE_BIN
  ? [process.env.GLIMPSE_BIN, ['models', 'fetch', ...extra]]
  : ['cargo', ['run', '--release', '--', 'models', 'fetch', ...extra]];

console.log(`$ ${[command, ...args].join(' ')}`);
execFileSync(command, args, { cwd: ROOT, stdio: 'inherit' });

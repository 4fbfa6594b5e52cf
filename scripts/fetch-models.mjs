#!/usr/bin/env node
// npm run fetch-models: the native CLI downloads, verifies and converts the weights into
// ./models (manifest.json, the .bpk files, sample photos). GLIMPSE_BIN may name a built
// `glimpse` binary; otherwise cargo builds and runs it.

import { glimpseCommand, run } from './lib.mjs';

const [command, leading] = glimpseCommand({ built: false, quiet: false });
run(command, [...leading, 'models', 'fetch', ...process.argv.slice(2)]);

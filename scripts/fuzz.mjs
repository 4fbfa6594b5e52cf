// Coverage-guided fuzzing of every parser that reads what a person or a server hands the crate
// (fuzz/: cargo-fuzz, libFuzzer, Rust nightly). Each target runs for SECONDS (default 60);
// new inputs go to fuzz/corpus-new/<target> (git-ignored) and the committed seeds in
// fuzz/corpus/<target> are only read; --merge adds the new inputs that reach new coverage to
// the committed corpus. A crash stops that target, leaves the input in fuzz/artifacts/<target>
// and makes the script fail, after the other targets have run.
//
//   npm run fuzz -- [SECONDS] [TARGET…] [--merge]
//
// FUZZ_TARGET_DIR is the nightly build's own directory (default fuzz/target): the
// instrumented build must not share the stable one.

import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, TOOLS, run, succeeds } from './lib.mjs';

const TARGETS = ['gguf', 'gguf_tokenizer', 'burnpack', 'manifest', 'image', 'rgba', 'resample', 'class_set', 'labels'];
// The limits every run holds the targets to: 0 crashes, no input over 1 s, no allocation over
// 1 GiB (enforced by fuzz/src/lib.rs's allocator, as the build has no sanitizer hooks).
const LIMITS = ['-rss_limit_mb=2048', '-malloc_limit_mb=1024', '-timeout=1'];
// libFuzzer caps inputs at its largest seed; a frame needs room for long, thin sizes.
const MAX_LEN = { rgba: 262_144 };
// Safe Rust: no sanitizer (twice the executions); debug assertions keep overflow checks on.
const BUILD = ['-O', '-a', '-s', 'none'];

const { values, positionals } = parseArgs({ allowPositionals: true, options: { merge: { type: 'boolean' } } });
const seconds = positionals.length && /^\d+$/.test(positionals[0]) ? Number(positionals.shift()) : 60;
const targets = positionals.length ? positionals : TARGETS;
for (const t of targets) if (!TARGETS.includes(t)) throw new Error(`unknown target '${t}' (${TARGETS.join(', ')})`);

const FUZZ = join(ROOT, 'fuzz');
const targetDir = resolve(process.env.FUZZ_TARGET_DIR ?? join(FUZZ, 'target'));
const env = { ...process.env, PATH: `${join(TOOLS, 'bin')}:${process.env.PATH}` };

if (!succeeds('cargo', ['+nightly', '--version'])) {
  console.error('fuzzing needs Rust nightly: rustup toolchain install nightly --profile minimal');
  process.exit(1);
}
if (!succeeds(join(TOOLS, 'bin', 'cargo-fuzz'), ['--version']) && !succeeds('cargo-fuzz', ['--version'])) {
  run('cargo', ['install', 'cargo-fuzz', '--root', TOOLS], { env });
}
const cargoFuzz = (args) => ['+nightly', 'fuzz', ...args, '--fuzz-dir', FUZZ, ...BUILD, '--target-dir', targetDir];
run('cargo', cargoFuzz(['build']), { env });
// The seeds in the weight containers' formats are generated, never committed.
run('node', [join(FUZZ, 'gguf-seeds.mjs')]);
run('cargo', ['test', '--release', '--test', 'fuzz_corpus', '--', '--ignored', 'write_seeds']);

/** Runs one target; resolves to its numbers, read from libFuzzer's output. */
function fuzz(target) {
  const fresh = join(FUZZ, 'corpus-new', target);
  const seeds = join(FUZZ, 'corpus', target);
  const artifacts = join(FUZZ, 'artifacts', target);
  const logs = join(targetDir, 'fuzz-logs');
  for (const dir of [fresh, artifacts, logs]) mkdirSync(dir, { recursive: true });
  const before = new Set(readdirSync(artifacts));
  const args = [
    ...cargoFuzz(['run', target, fresh, seeds]),
    '--',
    `-max_total_time=${seconds}`,
    ...LIMITS,
    ...(MAX_LEN[target] ? [`-max_len=${MAX_LEN[target]}`] : []),
    `-artifact_prefix=${artifacts}/`,
    '-print_final_stats=1',
  ];
  const log = createWriteStream(join(logs, `${target}.log`));
  return new Promise((done) => {
    const child = spawn('cargo', args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const read = (chunk) => {
      log.write(chunk);
      tail = (tail + chunk).slice(-200_000);
    };
    child.stdout.on('data', read);
    child.stderr.on('data', read);
    child.on('close', (code) => {
      log.end();
      const stat = (name) => Number(tail.match(new RegExp(`stat::${name}:\\s*(\\d+)`))?.[1] ?? NaN);
      // A run stopped by a crash prints no final stats: its last progress line says as much.
      const last = (pattern) => Number([...tail.matchAll(pattern)].at(-1)?.[1] ?? NaN);
      const coverage = [...tail.matchAll(/cov: (\d+) ft: (\d+)/g)].at(-1);
      const found = readdirSync(artifacts).filter((f) => !before.has(f));
      done({
        target,
        executions: stat('number_of_executed_units') || last(/^#(\d+)/gm),
        perSecond: stat('average_exec_per_sec') || last(/exec\/s: (\d+)/g),
        cov: coverage ? Number(coverage[1]) : NaN,
        ft: coverage ? Number(coverage[2]) : NaN,
        crashes: found.length ? found.map((f) => join('fuzz/artifacts', target, f)) : code === 0 ? [] : [`exit code ${code}`],
      });
    });
  });
}

const results = [];
for (const target of targets) {
  console.log(`\n# ${target}: ${seconds} s`);
  const result = await fuzz(target);
  results.push(result);
  console.log(`${target}: ${result.executions} executions (${result.perSecond}/s), cov ${result.cov}, ft ${result.ft}, crashes ${result.crashes.length ? result.crashes.join(', ') : 0}`);
  if (values.merge && !result.crashes.length) {
    run('cargo', [...cargoFuzz(['run', target, join(FUZZ, 'corpus', target), join(FUZZ, 'corpus-new', target)]), '--', '-merge=1', ...LIMITS], { env });
  }
}

console.log('\n| target | executions | exec/s | cov | ft | crashes |\n|---|---:|---:|---:|---:|---|');
for (const r of results) {
  console.log(`| ${r.target} | ${r.executions} | ${r.perSecond} | ${r.cov} | ${r.ft} | ${r.crashes.length ? r.crashes.join('<br>') : 0} |`);
}
if (results.some((r) => r.crashes.length)) {
  console.error('\nreplay a crash: cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/FILE --fuzz-dir fuzz -O -a -s none');
  process.exit(1);
}

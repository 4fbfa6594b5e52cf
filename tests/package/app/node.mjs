// Classify (and caption) image files in Node.js: node node.mjs MODELS_DIR photo.jpg…
import { readFile } from 'node:fs/promises';
import { Glimpse } from '@seed/glimpse';

const [models, ...files] = process.argv.slice(2);
const glimpse = await Glimpse.load({ models, backend: 'cpu' });
const results = [];
for (const file of files) {
  const { top } = await glimpse.classify(await readFile(file), { topK: 1 });
  results.push({ file, top: top[0] });
}
// A caption of the first photo; pixels work too: { width, height, data } (RGBA).
const { text } = await glimpse.caption(await readFile(files[0]));
glimpse.dispose();
console.log(JSON.stringify({ results, caption: text }));

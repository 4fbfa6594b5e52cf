// The "Teach your own classes" panel: name classes, add examples from photos or the camera,
// train, and keep the classes in this browser (IndexedDB) or in an exported file.

import { deleteClassSet } from '../www/glimpse.js';
import { cameraVideo } from './camera.js';
import { $, describe, reclassify, requireModel, showError, state } from './page.js';

const SET_KEY = 'default';
const BURST_SECONDS = 2;
const BURST_FPS = 5;

let pendingClasses = []; // classes named on the page that have no example yet

function teachStatus(text) {
  $('teach-status').textContent = text;
}

function renderClasses() {
  const { teacher } = state;
  const list = $('class-list');
  pendingClasses = pendingClasses.filter((name) => !teacher.classes.some((c) => c.name === name));
  const classes = [...teacher.classes, ...pendingClasses.map((name) => ({ name, examples: 0 }))];
  list.replaceChildren(
    ...classes.map(({ name, examples }) => {
      const item = document.createElement('li');
      item.dataset.class = name;
      const label = document.createElement('span');
      label.className = 'class-name';
      label.textContent = name;
      const count = document.createElement('span');
      count.className = 'class-count';
      count.textContent = `${examples} example${examples === 1 ? '' : 's'}`;
      const accuracy = teacher.accuracy.find((a) => a.name === name);
      if (teacher.trained && accuracy?.total) {
        count.textContent += ` · ${accuracy.correct}/${accuracy.total} left-out right`;
      }
      const photo = document.createElement('label');
      photo.className = 'button';
      photo.textContent = 'Add photos…';
      const input = document.createElement('input');
      input.type = 'file';
      input.accept = 'image/*';
      input.multiple = true;
      input.className = 'class-files';
      input.addEventListener('change', () => {
        addFiles(name, Array.from(input.files));
        input.value = '';
      });
      photo.append(input);
      const button = (text, className, onClick) => {
        const b = document.createElement('button');
        b.type = 'button';
        b.textContent = text;
        b.className = className;
        b.addEventListener('click', onClick);
        return b;
      };
      item.append(
        label,
        count,
        photo,
        button('Snap', 'class-snap', () => addFromCamera(name, 1)),
        button(`Burst ${BURST_SECONDS} s`, 'class-burst', () => addFromCamera(name, BURST_SECONDS * BURST_FPS)),
        button('Remove', 'class-remove', () => removeClass(name)),
      );
      return item;
    }),
  );
  $('use-taught').disabled = !teacher.trained;
  $('train').disabled = classes.length === 0;
}

async function persist() {
  try {
    await state.teacher.save(SET_KEY);
  } catch (error) {
    teachStatus(`Your classes could not be kept in this browser: ${error.message}`);
  }
}

/** A new teacher for the loaded model, with the classes saved in this browser. */
export async function startTeaching() {
  state.teacher?.dispose();
  const teacher = state.glimpse.teach();
  state.teacher = teacher;
  try {
    if (await teacher.restore(SET_KEY)) {
      teachStatus(`Restored ${teacher.classes.length} class${teacher.classes.length === 1 ? '' : 'es'} from this browser.`);
    }
  } catch (error) {
    teachStatus(`Your saved classes could not be restored: ${error.message}`);
  }
  renderClasses();
}

/** Adds examples one after another, showing how far it got; the head must be retrained. */
async function addExamples(name, sources, what) {
  const bar = $('train-progress');
  bar.hidden = false;
  bar.max = sources.length;
  try {
    for (const [i, source] of sources.entries()) {
      teachStatus(`Adding ${what} ${i + 1} of ${sources.length} to “${name}”…`);
      bar.value = i;
      await state.teacher.add(name, source);
    }
    teachStatus(`“${name}” has ${state.teacher.classes.find((c) => c.name === name)?.examples ?? 0} examples. Train to use them.`);
  } catch (error) {
    teachFailed(error);
  } finally {
    bar.hidden = true;
    renderClasses();
    await persist();
  }
}

function teachFailed(error) {
  teachStatus('');
  showError(describe(error));
}

function addFiles(name, files) {
  if (files.length) addExamples(name, files, 'photo');
}

async function addFromCamera(name, shots) {
  const video = cameraVideo();
  if (!video) {
    showError('Start the camera first, then snap examples of the class.');
    return;
  }
  // Grab the frames first, at a steady pace, then compute their features.
  const frames = [];
  for (let i = 0; i < shots; i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, 1000 / BURST_FPS));
    teachStatus(`Capturing ${i + 1} of ${shots}…`);
    frames.push(await createImageBitmap(video));
  }
  await addExamples(name, frames, 'shot');
}

async function removeClass(name) {
  pendingClasses = pendingClasses.filter((n) => n !== name);
  try {
    await state.teacher.remove(name);
    teachStatus(`Removed “${name}”. Train again to update the predictions.`);
  } catch (error) {
    showError(describe(error));
  }
  renderClasses();
  await persist();
}

async function train() {
  const { teacher } = state;
  if (!teacher) return requireModel();
  if (pendingClasses.length) {
    showError(`“${pendingClasses[0]}” has no examples yet: add a photo or a camera shot, or remove it.`);
    return;
  }
  const bar = $('train-progress');
  bar.hidden = false;
  const started = performance.now();
  try {
    await teacher.train({
      onProgress: ({ done, total }) => {
        bar.max = Math.max(total, 1);
        bar.value = done;
      },
    });
    const ms = performance.now() - started;
    const right = teacher.accuracy.reduce((n, a) => n + a.correct, 0);
    const held = teacher.accuracy.reduce((n, a) => n + a.total, 0);
    document.body.dataset.trainMs = Math.round(ms);
    teachStatus(
      `Trained ${teacher.classes.length} classes in ${Math.round(ms)} ms.` +
        (held ? ` Leaving each example out in turn, ${right} of ${held} were recognized.` : ''),
    );
    $('use-taught').checked = true;
    await persist();
    await reclassify();
  } catch (error) {
    teachFailed(error);
  } finally {
    bar.hidden = true;
    renderClasses();
  }
}

async function exportClasses() {
  if (!state.teacher) return requireModel();
  try {
    const json = await state.teacher.export();
    const link = document.createElement('a');
    link.href = URL.createObjectURL(new Blob([json], { type: 'application/json' }));
    link.download = 'glimpse-classes.json';
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  } catch (error) {
    showError(describe(error));
  }
}

async function importClasses(event) {
  const file = event.target.files?.[0];
  event.target.value = '';
  const { teacher } = state;
  if (!file || !teacher) return;
  try {
    await teacher.import(file);
    teachStatus(`Imported ${teacher.classes.length} classes from ${file.name}.`);
    await persist();
    await reclassify();
  } catch (error) {
    showError(describe(error));
  }
  renderClasses();
}

export function setUpTeaching() {
  $('class-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const name = $('class-name').value.trim();
    if (!name) return;
    if (!state.teacher) return requireModel();
    if (state.teacher.classes.some((c) => c.name === name) || pendingClasses.includes(name)) {
      teachStatus(`There is already a class “${name}”.`);
      return;
    }
    $('class-name').value = '';
    // A class exists in the engine once it has an example; until then it is only listed here.
    pendingClasses.push(name);
    renderClasses();
    teachStatus(`Add photos or camera shots of “${name}”.`);
  });
  $('train').addEventListener('click', train);
  $('use-taught').addEventListener('change', reclassify);
  $('teach-export').addEventListener('click', exportClasses);
  $('teach-import').addEventListener('change', importClasses);
  $('teach-reset').addEventListener('click', async () => {
    if (!state.glimpse) return;
    await deleteClassSet(SET_KEY).catch(() => {});
    await startTeaching();
    teachStatus('All classes deleted.');
    await reclassify();
  });
}

// The demo page: pick, drop or paste a photo, or start the camera, and see the top 5 classes,
// your own labels ranked, and the classes you taught.

import { Glimpse, InvalidArgumentError, ModelLoadError, UnsupportedImageError, deleteClassSet } from './glimpse.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const requestedBackend = params.get('backend') ?? 'auto';
const modelsUrl = params.get('models') ?? 'models/';

let glimpse = null;
let stopWatching = null;
let cameraStream = null;
let teacher = null;
let activeLabels = [];
let currentFile = null; // the photo on show, re-ranked when labels or classes change
let pendingClasses = []; // classes named on the page that have no example yet
let latestResult = null; // the last classification shown, for "Caption this frame"

// ---- messages ---------------------------------------------------------------------------

function showError(message, { canRetryModel = false } = {}) {
  $('error-message').textContent = message;
  $('retry-model').hidden = !canRetryModel;
  $('error').hidden = false;
}

function clearError() {
  $('error').hidden = true;
}

function describe(error) {
  if (error instanceof UnsupportedImageError) return `This picture cannot be classified: ${error.message}`;
  if (error instanceof ModelLoadError) return `The model could not be loaded: ${error.message}`;
  if (error instanceof InvalidArgumentError) return capitalize(error.message);
  return `Something went wrong: ${error.message}`;
}

function capitalize(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// ---- model ------------------------------------------------------------------------------

function showProgress({ loaded, total, fromCache }) {
  const bar = $('model-progress');
  bar.max = total || 1;
  bar.value = loaded;
  const mb = (n) => (n / 1e6).toFixed(1);
  $('model-progress-label').textContent = fromCache
    ? 'Loading the model from this browser’s cache…'
    : `Downloading the model… ${mb(loaded)} of ${mb(total)} MB`;
}

function showBackend({ backend, fallbackReason, notCached }) {
  const badge = $('backend-badge');
  badge.textContent = backend === 'webgpu' ? 'WebGPU' : 'CPU';
  badge.dataset.backend = backend;
  const notices = [];
  if (fallbackReason) notices.push(`Running on the CPU (slower) because ${fallbackReason}.`);
  if (notCached) notices.push(`Note: ${notCached}.`);
  const notice = $('fallback-notice');
  notice.hidden = notices.length === 0;
  notice.textContent = notices.join(' ');
}

async function loadModel() {
  clearError();
  $('model-status').hidden = false;
  $('backend-badge').textContent = 'loading…';
  const started = performance.now();
  try {
    glimpse = await Glimpse.load({ models: modelsUrl, backend: requestedBackend, onProgress: showProgress });
    showBackend(glimpse);
    $('model-status').hidden = true;
    document.body.dataset.loadMs = Math.round(performance.now() - started);
    await startTeaching();
  } catch (error) {
    $('model-status').hidden = true;
    $('backend-badge').textContent = 'not loaded';
    showError(describe(error), { canRetryModel: true });
  }
}

function requireModel() {
  if (glimpse) return true;
  showError('The model is not loaded yet. Wait for the download to finish, or retry it.', {
    canRetryModel: $('model-status').hidden,
  });
  return false;
}

// ---- results ----------------------------------------------------------------------------

function rankingItems(entries) {
  return entries.map(({ label, value, index }) => {
    const item = document.createElement('li');
    if (index !== undefined) item.dataset.index = index;
    const row = document.createElement('div');
    row.className = 'result-row';
    const name = document.createElement('span');
    name.className = 'label';
    name.textContent = label;
    const percent = document.createElement('span');
    percent.className = 'prob';
    percent.textContent = `${(value * 100).toFixed(1)}%`;
    row.append(name, percent);
    const bar = document.createElement('div');
    bar.className = 'bar';
    const fill = document.createElement('span');
    fill.style.width = `${Math.min(Math.max(value * 100, 0.5), 100)}%`;
    bar.append(fill);
    item.append(row, bar);
    return item;
  });
}

function clearResults() {
  for (const id of ['results', 'label-results', 'taught-results']) $(id).replaceChildren();
}

function showResults(result) {
  latestResult = result;
  const { top, labels, taught, ms, fps } = result;
  $('results').replaceChildren(...rankingItems(top.map(({ index, label, prob }) => ({ index, label, value: prob }))));
  // Label scores are cosine similarities; shown as they are, best first.
  $('labels-section').hidden = !labels;
  $('label-results').replaceChildren(...rankingItems((labels ?? []).map(({ label, score }) => ({ label, value: Math.max(score, 0) }))));
  $('taught-section').hidden = !taught;
  $('taught-results').replaceChildren(...rankingItems((taught ?? []).map(({ label, prob }) => ({ label, value: prob }))));
  $('latency').textContent = `${Math.round(ms)} ms`;
  $('fps').textContent = fps === undefined ? '–' : `${fps.toFixed(1)} fps`;
}

/** What each picture is asked: ImageNet, plus your labels and your classes when there are any. */
function classifyNow(source) {
  const labels = activeLabels.length ? activeLabels : undefined;
  if (teacher?.trained && $('use-taught').checked) return teacher.classify(source, { labels });
  return glimpse.classify(source, { labels });
}

// ---- files ------------------------------------------------------------------------------

let previewUrl = null;

async function classifyFile(file) {
  if (!requireModel()) return;
  if (stopWatching) stopCamera();
  clearError();
  URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(file);
  $('preview').hidden = false;
  $('camera-video').hidden = true;
  const image = $('preview-image');
  image.hidden = false;
  image.src = previewUrl;
  $('preview-caption').textContent = `${file.name || 'pasted image'}: classifying…`;
  clearResults();
  currentFile = file;
  stopCaption();
  try {
    const result = await classifyNow(file);
    showResults(result);
    $('preview-caption').textContent = file.name || 'pasted image';
    if (captionsOn()) writeCaption(result);
  } catch (error) {
    $('preview-caption').textContent = `${file.name || 'pasted image'}: not classified`;
    showError(describe(error));
  }
}

function firstImageFile(items) {
  return Array.from(items ?? []).find((file) => file instanceof File) ?? null;
}

$('file-input').addEventListener('change', (event) => {
  const file = firstImageFile(event.target.files);
  if (file) classifyFile(file);
  event.target.value = ''; // picking the same file again still classifies it
});

const dropZone = $('drop-zone');
document.addEventListener('dragover', (event) => {
  event.preventDefault();
  dropZone.classList.add('dragging');
});
document.addEventListener('dragleave', () => dropZone.classList.remove('dragging'));
document.addEventListener('drop', (event) => {
  event.preventDefault();
  dropZone.classList.remove('dragging');
  const file = firstImageFile(event.dataTransfer?.files);
  if (file) classifyFile(file);
  else showError('Drop an image file to classify it.');
});
document.addEventListener('paste', (event) => {
  const file = firstImageFile(Array.from(event.clipboardData?.items ?? [], (item) => item.getAsFile()));
  if (file) classifyFile(file);
});

// ---- camera -----------------------------------------------------------------------------

function cameraErrorMessage(error) {
  switch (error.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'Camera access was denied. Allow the camera for this site in the browser settings, then start it again.';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No camera was found. Connect one, or pick another in the list.';
    case 'NotReadableError':
      return 'The camera is in use by another application or could not be started.';
    default:
      return `The camera could not be started: ${error.message}`;
  }
}

async function listCameras() {
  if (!navigator.mediaDevices?.enumerateDevices) return;
  const select = $('camera-select');
  const chosen = select.value;
  const cameras = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === 'videoinput');
  select.replaceChildren(
    new Option('Default camera', ''),
    ...cameras.map((camera, i) => new Option(camera.label || `Camera ${i + 1}`, camera.deviceId)),
  );
  select.value = cameras.some((c) => c.deviceId === chosen) ? chosen : '';
}

function stopCamera() {
  stopCaption();
  captionedClass = null;
  $('caption-now').hidden = true;
  stopWatching?.();
  stopWatching = null;
  cameraStream?.getTracks().forEach((track) => track.stop());
  cameraStream = null;
  $('camera-video').srcObject = null;
  $('camera-start').disabled = false;
  $('camera-stop').disabled = true;
}

async function startCamera() {
  if (!requireModel()) return;
  stopCamera();
  clearError();
  if (!navigator.mediaDevices?.getUserMedia) {
    showError('This browser does not give pages access to a camera.');
    return;
  }
  const deviceId = $('camera-select').value;
  $('camera-start').disabled = true;
  try {
    cameraStream = await navigator.mediaDevices.getUserMedia({
      video: deviceId ? { deviceId: { exact: deviceId } } : { facingMode: 'environment' },
      audio: false,
    });
  } catch (error) {
    $('camera-start').disabled = false;
    showError(cameraErrorMessage(error));
    return;
  }
  const video = $('camera-video');
  video.srcObject = cameraStream;
  await video.play().catch(() => {});
  $('preview').hidden = false;
  $('preview-image').hidden = true;
  video.hidden = false;
  $('preview-caption').textContent = 'Camera';
  $('camera-stop').disabled = false;
  clearResults();
  currentFile = null;
  stopWatching = glimpse.watch(video, onLiveResult, {
    onError: (error) => showError(describe(error)),
    classify: classifyNow,
  });
  $('caption-now').hidden = !captionsOn();
  listCameras(); // labels become readable once permission is granted
}

/** A live frame's result; a caption is written when the top class changes. */
function onLiveResult(result) {
  showResults(result);
  document.body.dataset.liveResults = Number(document.body.dataset.liveResults ?? 0) + 1;
  if (captionsOn() && !captionAbort && result.top[0]?.index !== captionedClass) {
    captionedClass = result.top[0]?.index;
    writeCaption(result);
  }
}

$('camera-start').addEventListener('click', startCamera);
$('camera-stop').addEventListener('click', stopCamera);
$('camera-select').addEventListener('change', () => {
  if (cameraStream) startCamera();
});
navigator.mediaDevices?.addEventListener?.('devicechange', listCameras);

// ---- controls ---------------------------------------------------------------------------

$('dismiss-error').addEventListener('click', clearError);
$('retry-model').addEventListener('click', loadModel);

const backendSelect = $('backend-select');
backendSelect.value = ['auto', 'webgpu', 'cpu'].includes(requestedBackend) ? requestedBackend : 'auto';
backendSelect.addEventListener('change', () => {
  // The engine picks its device once; switching means starting again.
  params.set('backend', backendSelect.value);
  location.search = params.toString();
});

// ---- captions ---------------------------------------------------------------------------

const CAPTIONS_KEY = 'glimpse.captions';
let captionAbort = null; // the running caption's controller
let captionedClass = null; // the camera's top class when its caption was started

function captionsOn() {
  return $('caption-toggle').checked;
}

function stopCaption() {
  captionAbort?.abort();
  captionAbort = null;
  $('caption').textContent = '';
  $('caption-status').textContent = '';
  delete $('caption').dataset.state;
}

function showCaptionProgress({ loaded, total, fromCache }) {
  $('caption-status').textContent = fromCache
    ? 'Loading the language model from this browser’s cache…'
    : `Downloading the language model… ${(loaded / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB`;
}

/** Streams a caption for a classification into the page; a newer one replaces it. */
async function writeCaption(result) {
  captionAbort?.abort();
  const abort = new AbortController();
  captionAbort = abort;
  const caption = $('caption');
  caption.textContent = '';
  caption.dataset.state = 'loading';
  try {
    await glimpse.loadCaptionModel({ onProgress: showCaptionProgress });
    if (abort.signal.aborted) return;
    caption.dataset.state = 'writing';
    $('caption-status').textContent = '';
    const written = await glimpse.caption(result, {
      signal: abort.signal,
      onToken: (piece) => {
        caption.textContent += piece;
      },
    });
    caption.textContent = written.text;
    caption.dataset.state = written.fallback ? 'fallback' : 'done';
    const rate = written.tokens ? `, ${(written.tokens / (written.ms / 1000)).toFixed(1)} tokens/s` : '';
    $('caption-status').textContent =
      `${written.tokens} tokens in ${(written.ms / 1000).toFixed(1)} s${rate}` +
      (written.fallback ? '. The model’s sentence missed the subject, so a plain one is shown.' : '');
  } catch (error) {
    if (abort.signal.aborted) return;
    caption.dataset.state = 'error';
    caption.textContent = '';
    $('caption-status').textContent = `No caption: ${error.message}`;
  } finally {
    if (captionAbort === abort) captionAbort = null;
  }
}

$('caption-toggle').checked = localStorage.getItem(CAPTIONS_KEY) === 'on';
$('caption-toggle').addEventListener('change', () => {
  localStorage.setItem(CAPTIONS_KEY, captionsOn() ? 'on' : 'off');
  $('caption-now').hidden = !(captionsOn() && stopWatching);
  if (!captionsOn()) return stopCaption();
  if (latestResult && glimpse) writeCaption(latestResult);
});
$('caption-now').addEventListener('click', () => {
  if (latestResult) {
    captionedClass = latestResult.top[0]?.index;
    writeCaption(latestResult);
  }
});

// ---- your labels ------------------------------------------------------------------------

const LABELS_KEY = 'glimpse.labels';

/** Re-ranks the photo on show (the camera picks up changes by itself). */
async function reclassify() {
  if (!currentFile || stopWatching || !glimpse) return;
  try {
    showResults(await classifyNow(currentFile));
  } catch (error) {
    showError(describe(error));
  }
}

async function applyLabels() {
  const text = $('labels-input').value;
  const labels = [...new Set(text.split(',').map((l) => l.trim()).filter(Boolean))];
  localStorage.setItem(LABELS_KEY, text);
  if (labels.length === 0) {
    activeLabels = [];
    $('labels-status').textContent = 'No labels: showing ImageNet classes only.';
    $('labels-section').hidden = true;
    return;
  }
  if (!requireModel()) return;
  $('labels-apply').disabled = true;
  $('labels-status').textContent = 'Loading the text model…';
  try {
    await glimpse.loadLabelModel({
      onProgress: ({ loaded, total, fromCache }) => {
        $('labels-status').textContent = fromCache
          ? 'Loading the text model from this browser’s cache…'
          : `Downloading the text model… ${(loaded / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB`;
      },
    });
    activeLabels = labels;
    $('labels-status').textContent = 'Embedding the labels…';
    await reclassify();
    $('labels-status').textContent = `Ranking ${labels.length} label${labels.length === 1 ? '' : 's'}.`;
  } catch (error) {
    $('labels-status').textContent = '';
    showError(describe(error));
  } finally {
    $('labels-apply').disabled = false;
  }
}

$('labels-input').value = localStorage.getItem(LABELS_KEY) ?? '';
$('labels-apply').addEventListener('click', applyLabels);
$('labels-input').addEventListener('keydown', (event) => {
  if (event.key === 'Enter') applyLabels();
});
$('labels-clear').addEventListener('click', () => {
  $('labels-input').value = '';
  applyLabels();
});

// ---- teachable classes ------------------------------------------------------------------

const SET_KEY = 'default';
const BURST_SECONDS = 2;
const BURST_FPS = 5;

function teachStatus(text) {
  $('teach-status').textContent = text;
}

function renderClasses() {
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
    await teacher.save(SET_KEY);
  } catch (error) {
    teachStatus(`Your classes could not be kept in this browser: ${error.message}`);
  }
}

async function startTeaching() {
  teacher?.dispose();
  teacher = glimpse.teach();
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
      await teacher.add(name, source);
    }
    teachStatus(`“${name}” has ${teacher.classes.find((c) => c.name === name)?.examples ?? 0} examples. Train to use them.`);
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
  const video = $('camera-video');
  if (!cameraStream || video.readyState < 2) {
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
    await teacher.remove(name);
    teachStatus(`Removed “${name}”. Train again to update the predictions.`);
  } catch (error) {
    showError(describe(error));
  }
  renderClasses();
  await persist();
}

$('class-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const name = $('class-name').value.trim();
  if (!name) return;
  if (!teacher) return requireModel();
  if (teacher.classes.some((c) => c.name === name) || pendingClasses.includes(name)) {
    teachStatus(`There is already a class “${name}”.`);
    return;
  }
  $('class-name').value = '';
  // A class exists in the engine once it has an example; until then it is only listed here.
  pendingClasses.push(name);
  renderClasses();
  teachStatus(`Add photos or camera shots of “${name}”.`);
});

$('train').addEventListener('click', async () => {
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
});

$('use-taught').addEventListener('change', reclassify);

$('teach-export').addEventListener('click', async () => {
  if (!teacher) return requireModel();
  try {
    const json = await teacher.export();
    const link = document.createElement('a');
    link.href = URL.createObjectURL(new Blob([json], { type: 'application/json' }));
    link.download = 'glimpse-classes.json';
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  } catch (error) {
    showError(describe(error));
  }
});

$('teach-import').addEventListener('change', async (event) => {
  const file = event.target.files?.[0];
  event.target.value = '';
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
});

$('teach-reset').addEventListener('click', async () => {
  if (!glimpse) return;
  await deleteClassSet(SET_KEY).catch(() => {});
  await startTeaching();
  teachStatus('All classes deleted.');
  await reclassify();
});

listCameras().catch(() => {});
loadModel();

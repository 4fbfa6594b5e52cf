// The demo page: pick, drop or paste a photo, or start the camera, and see the top 5 classes
// (and where the picture shows them), your own labels ranked, the classes you taught and a
// caption. This module loads the model and handles photos; each other panel has its own module (camera, caption, labels, teach),
// and page.js holds what they share.

import { Glimpse, registerOfflineWorker } from '../www/glimpse.js';
import { listCameras, setUpCamera, stopCamera } from './camera.js';
import { captionsOn, setUpCaptions, stopCaption, writeCaption } from './caption.js';
import { setUpLabels } from './labels.js';
import { $, classifyNow, clearError, clearResults, describe, requireModel, showError, showResults, state } from './page.js';
import { setUpTeaching, startTeaching } from './teach.js';
import { setUpWhere } from './where.js';

const params = new URLSearchParams(location.search);
const requestedBackend = params.get('backend') ?? 'auto';
const modelsUrl = params.get('models') ?? 'models/';

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

/** The badge's tooltip: what 'auto' measured on each backend to choose this one. */
function timingsNote(timings) {
  if (!timings) return '';
  const when = timings.remembered ? ` (measured ${new Date(timings.measuredAt).toLocaleString()})` : '';
  return `Per camera frame: WebGPU ${Math.round(timings.webgpu)} ms, CPU ${Math.round(timings.cpu)} ms${when}; the faster runs.`;
}

function showBackend({ backend, fallbackReason, notCached, info }, restarted = null) {
  const badge = $('backend-badge');
  badge.textContent = backend === 'webgpu' ? 'WebGPU' : 'CPU';
  badge.dataset.backend = backend;
  // How many threads the CPU engine has: more than one only on a cross-origin-isolated page.
  const threads = backend === 'cpu' && info.threads ? `On the CPU, ${info.threads} thread${info.threads === 1 ? '' : 's'}.` : '';
  badge.title = [threads, timingsNote(info.timings)].filter(Boolean).join(' ');
  if (threads) badge.dataset.threads = info.threads;
  else delete badge.dataset.threads;
  if (info.timings) badge.dataset.timings = JSON.stringify(info.timings);
  else delete badge.dataset.timings;
  const notices = [];
  if (restarted) notices.push(`The engine stopped (${restarted}) and was started again; your classes and models were kept.`);
  if (fallbackReason) notices.push(`Running on the CPU (slower) because ${fallbackReason}.`);
  if (notCached) notices.push(`Note: ${notCached}.`);
  const notice = $('fallback-notice');
  notice.hidden = notices.length === 0;
  notice.textContent = notices.join(' ');
}

/** The engine stopped and a new one took over: the request it was on failed, the rest go on. */
function onRestart({ reason, fallbackReason }) {
  clearError();
  // A lost GPU device is said once, as the reason the CPU runs.
  showBackend(state.glimpse, reason === fallbackReason ? null : reason);
  document.body.dataset.restarts = Number(document.body.dataset.restarts ?? 0) + 1;
}

async function loadModel() {
  clearError();
  $('model-status').hidden = false;
  $('backend-badge').textContent = 'loading…';
  const started = performance.now();
  try {
    state.glimpse = await Glimpse.load({ models: modelsUrl, backend: requestedBackend, onProgress: showProgress, onRestart });
    showBackend(state.glimpse);
    $('model-status').hidden = true;
    document.body.dataset.loadMs = Math.round(performance.now() - started);
    await startTeaching();
  } catch (error) {
    $('model-status').hidden = true;
    $('backend-badge').textContent = 'not loaded';
    showError(describe(error), { canRetryModel: true });
  }
}

// ---- photos -----------------------------------------------------------------------------

let previewUrl = null;

async function classifyFile(file) {
  if (!requireModel()) return;
  if (state.live) stopCamera();
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
  state.currentFile = file;
  stopCaption();
  try {
    const result = await classifyNow(file);
    showResults(result);
    $('preview-caption').textContent = file.name || 'pasted image';
    if (captionsOn()) writeCaption(file); // the picture itself, so that all of it is looked at
  } catch (error) {
    $('preview-caption').textContent = `${file.name || 'pasted image'}: not classified`;
    showError(describe(error));
  }
}

function firstImageFile(items) {
  return Array.from(items ?? []).find((file) => file instanceof File) ?? null;
}

function setUpPhotos() {
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
}

// ---- controls ---------------------------------------------------------------------------

function setUpControls() {
  $('dismiss-error').addEventListener('click', clearError);
  $('retry-model').addEventListener('click', loadModel);

  const backendSelect = $('backend-select');
  backendSelect.value = ['auto', 'webgpu', 'cpu'].includes(requestedBackend) ? requestedBackend : 'auto';
  backendSelect.addEventListener('change', () => {
    // The engine picks its device once; switching means starting again.
    params.set('backend', backendSelect.value);
    location.search = params.toString();
  });
}

setUpPhotos();
setUpCamera();
setUpControls();
setUpCaptions();
setUpWhere();
setUpLabels();
setUpTeaching();
listCameras().catch(() => {});
loadModel();
// After this visit the page starts without a network (sw.js keeps its files; the models are
// in the package's own cache already).
registerOfflineWorker('sw.js').then((registration) => {
  if (registration) document.body.dataset.offlineReady = 'true';
});

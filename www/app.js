// The demo page: pick, drop or paste a photo, or start the camera, and see the top 5 classes.

import { Glimpse, ModelLoadError, UnsupportedImageError } from './glimpse.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const requestedBackend = params.get('backend') ?? 'auto';
const modelsUrl = params.get('models') ?? 'models/';

let glimpse = null;
let stopWatching = null;
let cameraStream = null;

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
  return `Something went wrong: ${error.message}`;
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

function showResults({ top, ms, fps }) {
  const list = $('results');
  list.replaceChildren(
    ...top.map(({ index, label, prob }) => {
      const item = document.createElement('li');
      item.dataset.index = index;
      const row = document.createElement('div');
      row.className = 'result-row';
      const name = document.createElement('span');
      name.className = 'label';
      name.textContent = label;
      const percent = document.createElement('span');
      percent.className = 'prob';
      percent.textContent = `${(prob * 100).toFixed(1)}%`;
      row.append(name, percent);
      const bar = document.createElement('div');
      bar.className = 'bar';
      const fill = document.createElement('span');
      fill.style.width = `${Math.max(prob * 100, 0.5)}%`;
      bar.append(fill);
      item.append(row, bar);
      return item;
    }),
  );
  $('latency').textContent = `${Math.round(ms)} ms`;
  $('fps').textContent = fps === undefined ? '–' : `${fps.toFixed(1)} fps`;
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
  $('results').replaceChildren();
  try {
    const result = await glimpse.classify(file);
    showResults(result);
    $('preview-caption').textContent = file.name || 'pasted image';
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
  $('results').replaceChildren();
  stopWatching = glimpse.watch(video, showResults, { onError: (error) => showError(describe(error)) });
  listCameras(); // labels become readable once permission is granted
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

listCameras().catch(() => {});
loadModel();

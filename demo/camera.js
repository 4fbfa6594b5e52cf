// The camera: a device picker, start and stop, and live classification of the newest frame.

import { cameraChanged, captionLiveResult } from './caption.js';
import { $, clearError, clearResults, describe, requireModel, showError, showResults, state } from './page.js';
import { classifyFrame } from './where.js';

let stopWatching = null;
let cameraStream = null;
let stoppedByHiding = false; // the camera was on when the page was hidden: start it again when shown

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

export async function listCameras() {
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

/** The camera's video when it is playing a frame, else null (for taking examples). */
export function cameraVideo() {
  const video = $('camera-video');
  return cameraStream && video.readyState >= 2 ? video : null;
}

export function stopCamera() {
  stoppedByHiding = false;
  cameraChanged(false);
  stopWatching?.();
  stopWatching = null;
  state.live = false;
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
  state.currentFile = null;
  stopWatching = state.glimpse.watch(video, onLiveResult, {
    onError: (error) => showError(describe(error)),
    classify: classifyFrame,
  });
  state.live = true;
  cameraChanged(true);
  listCameras(); // labels become readable once permission is granted
}

/** A live frame's result. */
function onLiveResult(result) {
  showResults(result);
  document.body.dataset.liveResults = Number(document.body.dataset.liveResults ?? 0) + 1;
  captionLiveResult(result);
}

/**
 * A hidden page gives the camera back (its light goes off, another app may use it) rather than
 * only pausing classification; showing the page starts the same camera again.
 */
function onVisibility() {
  if (document.hidden && cameraStream) {
    stopCamera();
    stoppedByHiding = true;
  } else if (!document.hidden && stoppedByHiding) {
    stoppedByHiding = false;
    startCamera();
  }
}

export function setUpCamera() {
  document.addEventListener('visibilitychange', onVisibility);
  $('camera-start').addEventListener('click', startCamera);
  $('camera-stop').addEventListener('click', stopCamera);
  $('camera-select').addEventListener('change', () => {
    if (cameraStream) startCamera();
  });
  navigator.mediaDevices?.addEventListener?.('devicechange', listCameras);
}

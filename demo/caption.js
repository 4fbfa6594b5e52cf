// The caption panel: "Write a caption" (remembered) streams a sentence under the predictions
// of each photo; with the camera, whenever the top class changes, or on "Caption this frame".
// The engine is given the picture itself (the photo's file, the camera's video), so that it
// looks at all of it and may name a second object it confirmed; the objects it was allowed to
// name show as chips under the caption, and pointing at one outlines where it is.

import { $, state } from './page.js';
import { showBox } from './where.js';

const CAPTIONS_KEY = 'glimpse.captions';
let captionAbort = null; // the running caption's controller
let captionedClass = null; // the camera's top class when its caption was started

export function captionsOn() {
  return $('caption-toggle').checked;
}

export function stopCaption() {
  captionAbort?.abort();
  captionAbort = null;
  $('caption').textContent = '';
  $('caption-status').textContent = '';
  delete $('caption').dataset.state;
  delete $('caption').dataset.source;
  showObjects([]);
}

/** What a caption is written for: the photo's file, the camera's video, else the last result. */
function pictureOnShow() {
  if (state.live) return $('camera-video');
  return state.currentFile ?? state.latestResult;
}

/** The camera started (`live`) or stopped: "Caption this frame" shows while it runs. */
export function cameraChanged(live) {
  if (!live) {
    stopCaption();
    captionedClass = null;
  }
  $('caption-now').hidden = !(live && captionsOn());
}

/** A live frame's result: a caption is written when the top class changes. */
export function captionLiveResult(result) {
  if (captionsOn() && !captionAbort && result.top[0]?.index !== captionedClass) {
    captionedClass = result.top[0]?.index;
    writeCaption($('camera-video'));
  }
}

function showCaptionProgress({ loaded, total, fromCache }) {
  $('caption-status').textContent = fromCache
    ? 'Loading the language model from this browser’s cache…'
    : `Downloading the language model… ${(loaded / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB`;
}

// ---- evidence ---------------------------------------------------------------------------

/** "yurt · on the left": an object the caption could name, and where, when it said where. */
function objectChip({ label, prob, box, position }) {
  const chip = document.createElement('li');
  chip.className = 'chip';
  chip.textContent = position ? `${label} · ${position}` : label;
  chip.title = `${(prob * 100).toFixed(1)}%` + (box ? ': point at it to see where' : '');
  if (box) {
    chip.tabIndex = 0;
    chip.dataset.box = box.join(',');
    const outline = () => showBox(box);
    chip.addEventListener('pointerenter', outline);
    chip.addEventListener('focus', outline);
    chip.addEventListener('pointerleave', () => showBox(null));
    chip.addEventListener('blur', () => showBox(null));
  }
  return chip;
}

function showObjects(objects) {
  $('caption-objects').replaceChildren(...objects.map(objectChip));
  showBox(null);
}

/** The status line under a finished caption: its speed, and how the sentence was made. */
function captionStatus(written) {
  if (written.source === 'rule') return 'The classifier was unsure, so the sentence hedges (written by rule, not by the language model).';
  const rate = written.tokens ? `, ${(written.tokens / (written.ms / 1000)).toFixed(1)} tokens/s` : '';
  return (
    `${written.tokens} tokens in ${(written.ms / 1000).toFixed(1)} s${rate}` +
    (written.fallback ? '. The model’s sentence missed the subject, so a plain one is shown.' : '')
  );
}

// ---- writing ----------------------------------------------------------------------------

/**
 * Streams a caption into the page for `source`, a picture (the photo's file, the camera's
 * video) or a classification result; a newer one replaces it.
 */
export async function writeCaption(source) {
  captionAbort?.abort();
  const abort = new AbortController();
  captionAbort = abort;
  const caption = $('caption');
  caption.textContent = '';
  showObjects([]);
  caption.dataset.state = 'loading';
  try {
    await state.glimpse.loadCaptionModel({ onProgress: showCaptionProgress });
    if (abort.signal.aborted) return;
    caption.dataset.state = 'writing';
    $('caption-status').textContent = '';
    const written = await state.glimpse.caption(source, {
      signal: abort.signal,
      onToken: (piece) => {
        caption.textContent += piece;
      },
    });
    caption.textContent = written.text;
    caption.dataset.state = written.fallback ? 'fallback' : 'done';
    caption.dataset.source = written.source;
    $('caption-status').textContent = captionStatus(written);
    showObjects(written.objects ?? []);
  } catch (error) {
    if (abort.signal.aborted) return;
    caption.dataset.state = 'error';
    caption.textContent = '';
    $('caption-status').textContent = `No caption: ${error.message}`;
  } finally {
    if (captionAbort === abort) captionAbort = null;
  }
}

export function setUpCaptions() {
  $('caption-toggle').checked = localStorage.getItem(CAPTIONS_KEY) === 'on';
  $('caption-toggle').addEventListener('change', () => {
    localStorage.setItem(CAPTIONS_KEY, captionsOn() ? 'on' : 'off');
    $('caption-now').hidden = !(captionsOn() && state.live);
    if (!captionsOn()) return stopCaption();
    if (state.latestResult && state.glimpse) writeCaption(pictureOnShow());
  });
  $('caption-now').addEventListener('click', () => {
    if (state.latestResult) {
      captionedClass = state.latestResult.top[0]?.index;
      writeCaption(pictureOnShow());
    }
  });
}

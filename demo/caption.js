// The caption panel: "Write a caption" (remembered) streams a sentence under the predictions
// of each photo; with the camera, whenever the top class changes, or on "Caption this frame".

import { $, state } from './page.js';

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
    writeCaption(result);
  }
}

function showCaptionProgress({ loaded, total, fromCache }) {
  $('caption-status').textContent = fromCache
    ? 'Loading the language model from this browser’s cache…'
    : `Downloading the language model… ${(loaded / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB`;
}

/** Streams a caption for a classification into the page; a newer one replaces it. */
export async function writeCaption(result) {
  captionAbort?.abort();
  const abort = new AbortController();
  captionAbort = abort;
  const caption = $('caption');
  caption.textContent = '';
  caption.dataset.state = 'loading';
  try {
    await state.glimpse.loadCaptionModel({ onProgress: showCaptionProgress });
    if (abort.signal.aborted) return;
    caption.dataset.state = 'writing';
    $('caption-status').textContent = '';
    const written = await state.glimpse.caption(result, {
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

export function setUpCaptions() {
  $('caption-toggle').checked = localStorage.getItem(CAPTIONS_KEY) === 'on';
  $('caption-toggle').addEventListener('change', () => {
    localStorage.setItem(CAPTIONS_KEY, captionsOn() ? 'on' : 'off');
    $('caption-now').hidden = !(captionsOn() && state.live);
    if (!captionsOn()) return stopCaption();
    if (state.latestResult && state.glimpse) writeCaption(state.latestResult);
  });
  $('caption-now').addEventListener('click', () => {
    if (state.latestResult) {
      captionedClass = state.latestResult.top[0]?.index;
      writeCaption(state.latestResult);
    }
  });
}

// What the demo page's panels share: the state they read (one object, written only where each
// field says), the error box, and the results lists every panel's classification ends in.

import { InvalidArgumentError, ModelLoadError, UnsupportedImageError } from '../www/glimpse.js';

export const $ = (id) => document.getElementById(id);

export const state = {
  /** The loaded `Glimpse`, once the model is ready (main.js). */
  glimpse: null,
  /** The page's `Teacher`, made once the model is ready (teach.js). */
  teacher: null,
  /** The label text to rank each picture by, as typed; null for ImageNet only (labels.js). */
  labels: null,
  /** The photo on show, re-ranked when labels or classes change; null with the camera (main.js). */
  currentFile: null,
  /** True while the camera is classified live (camera.js). */
  live: false,
  /** The last classification shown, for "Caption this frame" (showResults). */
  latestResult: null,
};

// ---- messages ---------------------------------------------------------------------------

export function showError(message, { canRetryModel = false } = {}) {
  $('error-message').textContent = message;
  $('retry-model').hidden = !canRetryModel;
  $('error').hidden = false;
}

export function clearError() {
  $('error').hidden = true;
}

export function describe(error) {
  if (error instanceof UnsupportedImageError) return `This picture cannot be classified: ${error.message}`;
  if (error instanceof ModelLoadError) return `The model could not be loaded: ${error.message}`;
  if (error instanceof InvalidArgumentError) return capitalize(error.message);
  return `Something went wrong: ${error.message}`;
}

function capitalize(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function requireModel() {
  if (state.glimpse) return true;
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

export function clearResults() {
  for (const id of ['results', 'label-results', 'taught-results']) $(id).replaceChildren();
}

/** How many labels are ranked, as the engine counted them (after dropping blanks and repeats). */
export function labelCount(n) {
  return `Ranking ${n} label${n === 1 ? '' : 's'}.`;
}

export function showResults(result) {
  state.latestResult = result;
  const { top, labels, taught, ms, fps } = result;
  $('results').replaceChildren(...rankingItems(top.map(({ index, label, prob }) => ({ index, label, value: prob }))));
  // Label scores are cosine similarities; shown as they are, best first.
  $('labels-section').hidden = !labels;
  $('label-results').replaceChildren(...rankingItems((labels ?? []).map(({ label, score }) => ({ label, value: Math.max(score, 0) }))));
  // Once the labels panel says they are ranked, it says how many the engine kept.
  if (labels && $('labels-status').textContent.startsWith('Ranking')) $('labels-status').textContent = labelCount(labels.length);
  $('taught-section').hidden = !taught;
  $('taught-results').replaceChildren(...rankingItems((taught ?? []).map(({ label, prob }) => ({ label, value: prob }))));
  $('latency').textContent = `${Math.round(ms)} ms`;
  $('fps').textContent = fps === undefined ? '–' : `${fps.toFixed(1)} fps`;
}

/** What each picture is asked: ImageNet, plus your labels and your classes when there are any. */
export function classifyNow(source) {
  const labels = state.labels ?? undefined;
  if (state.teacher?.trained && $('use-taught').checked) return state.teacher.classify(source, { labels });
  return state.glimpse.classify(source, { labels });
}

/**
 * Re-ranks the photo on show (the camera picks up changes by itself); resolves to the result,
 * or null when there was nothing to re-rank or it failed (the error is shown).
 */
export async function reclassify() {
  if (!state.currentFile || state.live || !state.glimpse) return null;
  try {
    const result = await classifyNow(state.currentFile);
    showResults(result);
    return result;
  } catch (error) {
    showError(describe(error));
    return null;
  }
}

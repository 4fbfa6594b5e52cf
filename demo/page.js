// What the demo page's panels share: the state they read (one object, written only where each
// field says), the error box, and the results lists every panel's classification ends in.

import { InvalidArgumentError, ModelLoadError, UnsupportedImageError } from '../www/glimpse.js';
import { groupsText, labelEntries, probabilityEntries, rankingItems, taughtEntries } from './ranking.js';

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
  /** True when pictures are classified with where each class lies ("Show where", where.js). */
  where: false,
};

/** Called with each result shown, and with null when the results are cleared. */
const resultWatchers = [];

export function watchResults(watcher) {
  resultWatchers.push(watcher);
}

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

export function clearResults() {
  for (const id of ['results', 'label-results', 'taught-results']) $(id).replaceChildren();
  $('groups').textContent = '';
  for (const watcher of resultWatchers) watcher(null);
}

/** How many labels are ranked, as the engine counted them (after dropping blanks and repeats). */
export function labelCount(n) {
  return `Ranking ${n} label${n === 1 ? '' : 's'}.`;
}

export function showResults(result) {
  state.latestResult = result;
  const { top, groups, labels, taught, ms, fps } = result;
  $('results').replaceChildren(...rankingItems(probabilityEntries(top)));
  $('groups').textContent = groupsText(groups);
  $('labels-section').hidden = !labels;
  $('label-results').replaceChildren(...rankingItems(labelEntries(labels ?? [])));
  $('labels-similar-note').hidden = !labels?.some((l) => l.kind === 'similarity');
  // Once the labels panel says they are ranked, it says how many the engine kept.
  if (labels && $('labels-status').textContent.startsWith('Ranking')) $('labels-status').textContent = labelCount(labels.length);
  $('taught-section').hidden = !taught;
  $('taught-results').replaceChildren(...rankingItems(taughtEntries(taught ?? [])));
  $('latency').textContent = `${Math.round(ms)} ms`;
  $('fps').textContent = fps === undefined ? '–' : `${fps.toFixed(1)} fps`;
  for (const watcher of resultWatchers) watcher(result);
}

/**
 * What each picture is asked: ImageNet, plus your labels and your classes when there are any,
 * and where each class lies when "Show where" is on (otherwise `where` is not asked at all: it
 * costs the engine more passes).
 */
export function classifyNow(source, { where = state.where } = {}) {
  const options = { labels: state.labels ?? undefined };
  if (where) options.where = where;
  if (state.teacher?.trained && $('use-taught').checked) return state.teacher.classify(source, options);
  return state.glimpse.classify(source, options);
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

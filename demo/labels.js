// The "Your labels" panel: the typed text (remembered) goes to the engine as it is; the engine
// splits, trims and dedupes it, and the results show what it kept.

import { $, describe, labelCount, reclassify, requireModel, showError, state } from './page.js';

const LABELS_KEY = 'glimpse.labels';

async function applyLabels() {
  const text = $('labels-input').value;
  localStorage.setItem(LABELS_KEY, text);
  // The one check left to the page: a box with nothing but spaces and commas means ImageNet only.
  if (/^[\s,]*$/.test(text)) {
    state.labels = null;
    $('labels-status').textContent = 'No labels: showing ImageNet classes only.';
    $('labels-section').hidden = true;
    return;
  }
  if (!requireModel()) return;
  $('labels-apply').disabled = true;
  $('labels-status').textContent = 'Loading the text model…';
  try {
    await state.glimpse.loadLabelModel({
      onProgress: ({ loaded, total, fromCache }) => {
        $('labels-status').textContent = fromCache
          ? 'Loading the text model from this browser’s cache…'
          : `Downloading the text model… ${(loaded / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB`;
      },
    });
    state.labels = text;
    $('labels-status').textContent = 'Embedding the labels…';
    const result = await reclassify();
    // Without a photo on show the count comes with the next picture's results.
    $('labels-status').textContent = result?.labels ? labelCount(result.labels.length) : 'Ranking your labels on each picture.';
  } catch (error) {
    $('labels-status').textContent = '';
    showError(describe(error));
  } finally {
    $('labels-apply').disabled = false;
  }
}

export function setUpLabels() {
  $('labels-input').value = localStorage.getItem(LABELS_KEY) ?? '';
  $('labels-apply').addEventListener('click', applyLabels);
  $('labels-input').addEventListener('keydown', (event) => {
    if (event.key === 'Enter') applyLabels();
  });
  $('labels-clear').addEventListener('click', () => {
    $('labels-input').value = '';
    applyLabels();
  });
}

// How the page draws a ranking (the top-5, your labels, your classes) and the rule every
// number on it follows: a percentage only where the value is a real chance. A ranking score
// (your labels' text similarity) gets a bar relative to the best and no number.

const percent = (value) => `${(value * 100).toFixed(1)}%`;

/**
 * List items for `entries` `{ label, bar (0–1 of the bar's width), text (what the number
 * column says, '' for none), title?, kind?, index? }`. A top-5 row (one with an `index`) can
 * be focused, so that pointing at it with the keyboard works as hovering does.
 */
export function rankingItems(entries) {
  return entries.map(({ label, bar, text, title, kind, index }) => {
    const item = document.createElement('li');
    if (index !== undefined) {
      item.dataset.index = index;
      item.tabIndex = 0;
    }
    if (kind) item.dataset.kind = kind;
    if (title) item.title = title;
    const row = document.createElement('div');
    row.className = 'result-row';
    const name = document.createElement('span');
    name.className = 'label';
    name.textContent = label;
    const number = document.createElement('span');
    number.className = 'prob';
    number.textContent = text;
    row.append(name, number);
    const track = document.createElement('div');
    track.className = 'bar';
    const fill = document.createElement('span');
    fill.style.width = `${Math.min(Math.max(bar * 100, 0.5), 100)}%`;
    track.append(fill);
    item.append(row, track);
    return item;
  });
}

/**
 * Entries for your classes. Their percentages are chances among your classes, so when the
 * picture looks like none of them (no class `resembles` it) the page says so and ranks them
 * by similarity, with bars relative to the closest and no percentages.
 */
export function taughtEntries(taught) {
  if (!taught.length || taught.some((t) => t.resembles)) return probabilityEntries(taught);
  const best = Math.max(...taught.map((t) => t.similarity));
  return [
    { label: 'none of your classes; closest:', bar: 0, text: '', kind: 'none' },
    ...taught.map(({ label, similarity }) => ({
      label,
      kind: 'similarity',
      bar: best > 0 ? Math.max(similarity, 0) / best : 0,
      text: '',
      title: 'The picture looks like none of your classes: ranked by similarity, not a chance',
    })),
  ];
}

/** Entries for probabilities (the top-5, your classes): the bar and the number agree. */
export function probabilityEntries(predictions) {
  return predictions.map(({ index, label, prob }) => ({ index, label, bar: prob, text: percent(prob) }));
}

/**
 * Entries for your labels. A `probability` (WordNet knows the label: the classifier's chance
 * summed over the classes under it) shows as a percentage; a `similarity` is only a ranking
 * score, so its bar is relative to the best similarity on show and it has no number.
 */
export function labelEntries(labels) {
  const best = Math.max(0, ...labels.filter((l) => l.kind === 'similarity').map((l) => l.score));
  return labels.map(({ label, score, kind }) =>
    kind === 'probability'
      ? { label, kind, bar: score, text: percent(score), title: 'The classifier’s chance for this label' }
      : {
          label,
          kind,
          bar: best > 0 ? Math.max(score, 0) / best : 0,
          text: '',
          title: 'Ranked by how similar the label’s meaning is to the picture: not a chance',
        },
  );
}

/** "together: dog 97.2% (bull mastiff, boxer)": top-5 rivals under the noun they share. */
export function groupsText(groups) {
  if (!groups?.length) return '';
  const each = groups.map(({ noun, prob, members }) => `${noun} ${percent(prob)} (${members.map((m) => m.label).join(', ')})`);
  return `together: ${each.join('; ')}`;
}

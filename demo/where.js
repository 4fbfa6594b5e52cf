// "Show where": the map of where a class's evidence lies, drawn over the picture on show, and
// the box of a caption's object while it is pointed at. One canvas lies over the preview image
// or video; every drawing goes through render(), from what is on show (`shown`).

import { $, classifyNow, reclassify, state, watchResults } from './page.js';

const WHERE_KEY = 'glimpse.where';
/** Opacity where the map reaches its peak, so the picture stays visible under the colour. */
const MAX_ALPHA = 0.65;
const shown = {
  /** The classification on show, or null. */
  result: null,
  /** The latest classification of the same picture or camera that came with maps, or null. */
  maps: null,
  /** The class index pointed at in the top-5, or null for the top class. */
  pointed: null,
  /** A box `[x0, y0, x1, y1]` (picture pixels) to outline, or null. */
  box: null,
};

// Reused for every frame: the map goes into `cells` at one pixel per cell, then is scaled up.
const cells = document.createElement('canvas');
let cellPixels = null; // ImageData sized to `cells`

export function whereOn() {
  return $('where-toggle').checked;
}

/**
 * A new classification is on show: draw its top class (or the class still pointed at); null:
 * nothing is on show any more (a new picture is being classified).
 */
function showWhere(result) {
  shown.result = result;
  if (result?.top.some((p) => p.where)) shown.maps = result;
  if (!result) {
    shown.maps = null;
    shown.box = null;
  }
  render();
}

// ---- live frames ------------------------------------------------------------------------

/**
 * Classifies a camera frame, with maps when "Show where" is on: those of the center crop the
 * classifier saw, which come from the frame's own pass (whole-picture maps would cost a pass
 * per view and more than halve the frame rate on the CPU). Every frame's map is its own.
 */
export function classifyFrame(video) {
  return classifyNow(video, { where: state.where ? 'crop' : false });
}

/** Outlines `box` (picture pixels) over the picture; null takes it away. */
export function showBox(box) {
  shown.box = box ?? null;
  render();
}

// ---- geometry ---------------------------------------------------------------------------

/** The image or video on show, with the picture's own size; null when neither shows. */
function pictureOnShow() {
  const video = $('camera-video');
  if (!video.hidden && video.videoWidth) return { element: video, width: video.videoWidth, height: video.videoHeight };
  const image = $('preview-image');
  if (!image.hidden && image.naturalWidth) return { element: image, width: image.naturalWidth, height: image.naturalHeight };
  return null;
}

/**
 * Where the picture lies inside its element, in CSS pixels from the element's top left: the
 * element may letterbox it (a video's default `object-fit: contain`) or crop it (`cover`).
 */
function contentRect(element, width, height) {
  const [boxWidth, boxHeight] = [element.clientWidth, element.clientHeight];
  const fit = getComputedStyle(element).objectFit;
  let scale;
  if (fit === 'fill') return { x: 0, y: 0, width: boxWidth, height: boxHeight };
  if (fit === 'cover') scale = Math.max(boxWidth / width, boxHeight / height);
  else if (fit === 'none') scale = 1;
  else if (fit === 'scale-down') scale = Math.min(1, boxWidth / width, boxHeight / height);
  else scale = Math.min(boxWidth / width, boxHeight / height); // contain
  const [drawnWidth, drawnHeight] = [width * scale, height * scale];
  return { x: (boxWidth - drawnWidth) / 2, y: (boxHeight - drawnHeight) / 2, width: drawnWidth, height: drawnHeight };
}

/**
 * Lays the overlay exactly over `element` and sizes its pixels to the screen's; returns its
 * 2D context, cleared, in CSS pixels. The canvas is only resized when the element's size
 * changes, since resizing reallocates it.
 */
function coverElement(overlay, element) {
  const ratio = window.devicePixelRatio || 1;
  const [width, height] = [element.clientWidth, element.clientHeight];
  const [pixelWidth, pixelHeight] = [Math.round(width * ratio), Math.round(height * ratio)];
  if (overlay.width !== pixelWidth || overlay.height !== pixelHeight) {
    overlay.width = pixelWidth;
    overlay.height = pixelHeight;
  }
  overlay.style.left = `${element.offsetLeft + element.clientLeft}px`;
  overlay.style.top = `${element.offsetTop + element.clientTop}px`;
  overlay.style.width = `${width}px`;
  overlay.style.height = `${height}px`;
  const context = overlay.getContext('2d');
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.clearRect(0, 0, width, height);
  return context;
}

// ---- drawing ----------------------------------------------------------------------------

/**
 * The class whose map to draw: the one pointed at in the top-5, else the top class, from the
 * latest maps (with the camera, a few frames old); null when those maps lack it.
 */
function classToDraw() {
  const index = shown.pointed ?? shown.result?.top[0]?.index;
  return shown.maps?.top.find((p) => p.index === index && p.where) ?? null;
}

/** Transparent where there is no evidence, through yellow to red at the peak. */
function colourAt(t, pixel, at) {
  pixel[at] = 255;
  pixel[at + 1] = Math.round(230 * (1 - t) + 30 * t);
  pixel[at + 2] = Math.round(40 * (1 - t));
  pixel[at + 3] = Math.round(255 * MAX_ALPHA * Math.sqrt(t));
}

/** The map's strongest cell, `{ col, row, value }`. */
function peakOf({ map, width }) {
  let best = 0;
  for (let i = 1; i < map.length; i += 1) if (map[i] > map[best]) best = i;
  return { col: best % width, row: Math.floor(best / width), value: map[best] };
}

/**
 * Draws `where`'s map over the part of `rect` it covers (its `area` of a `pictureWidth ×
 * pictureHeight` picture): one pixel per cell, coloured relative to the peak (cells with no
 * positive evidence stay clear), then scaled up with smoothing, so cell centres land on the
 * centres of the picture's cells. Returns the peak.
 */
function drawMap(context, where, rect, pictureWidth, pictureHeight) {
  const { map, width, height } = where;
  const [x0, y0, x1, y1] = where.area ?? [0, 0, pictureWidth, pictureHeight];
  const [sx, sy] = [rect.width / pictureWidth, rect.height / pictureHeight];
  if (cells.width !== width || cells.height !== height || !cellPixels) {
    cells.width = width;
    cells.height = height;
    cellPixels = new ImageData(width, height);
  }
  const peak = peakOf(where);
  const scale = peak.value > 0 ? 1 / peak.value : 0;
  for (let i = 0; i < map.length; i += 1) colourAt(Math.min(Math.max(map[i] * scale, 0), 1), cellPixels.data, i * 4);
  cells.getContext('2d').putImageData(cellPixels, 0, 0);
  context.imageSmoothingEnabled = true;
  context.imageSmoothingQuality = 'high';
  context.drawImage(cells, rect.x + x0 * sx, rect.y + y0 * sy, (x1 - x0) * sx, (y1 - y0) * sy);
  return peak;
}

/** Outlines `box` (picture pixels, a `width × height` picture) over `rect`. */
function drawBox(context, box, rect, width, height) {
  const [sx, sy] = [rect.width / width, rect.height / height];
  const [x0, y0, x1, y1] = box;
  context.lineWidth = 3;
  context.strokeStyle = '#fff';
  context.strokeRect(rect.x + x0 * sx, rect.y + y0 * sy, (x1 - x0) * sx, (y1 - y0) * sy);
  context.lineWidth = 1.5;
  context.strokeStyle = '#1f5bd8';
  context.strokeRect(rect.x + x0 * sx, rect.y + y0 * sy, (x1 - x0) * sx, (y1 - y0) * sy);
}

/**
 * Draws what is on show. The overlay's `data-` attributes say what it holds, for tests and
 * tools: `data-class` (the class whose map is drawn), `data-peak-x`/`data-peak-y` (its peak
 * cell's centre as a 0–1 fraction of the picture) and `data-box` (the outlined box).
 */
function render() {
  const overlay = $('where-overlay');
  const picture = pictureOnShow();
  const drawn = whereOn() ? classToDraw() : null;
  for (const key of ['class', 'peakX', 'peakY', 'box']) delete overlay.dataset[key];
  if (!picture || (!drawn && !shown.box)) {
    overlay.hidden = true;
    return;
  }
  overlay.hidden = false;
  const context = coverElement(overlay, picture.element);
  const rect = contentRect(picture.element, picture.width, picture.height);
  if (drawn) {
    const { width, height } = picture;
    const peak = drawMap(context, drawn.where, rect, width, height);
    const [x0, y0, x1, y1] = drawn.where.area ?? [0, 0, width, height];
    overlay.dataset.class = drawn.index;
    overlay.dataset.peakX = ((x0 + ((peak.col + 0.5) / drawn.where.width) * (x1 - x0)) / width).toFixed(3);
    overlay.dataset.peakY = ((y0 + ((peak.row + 0.5) / drawn.where.height) * (y1 - y0)) / height).toFixed(3);
  }
  if (shown.box) {
    drawBox(context, shown.box, rect, picture.width, picture.height);
    overlay.dataset.box = shown.box.join(',');
  }
}

// ---- pointing ---------------------------------------------------------------------------

/** The top-5 row under an event, by its class index; null outside the rows. */
function pointedIndex(event) {
  const item = event.target.closest?.('#results li[data-index]');
  return item ? Number(item.dataset.index) : null;
}

function point(index) {
  if (shown.pointed === index) return;
  shown.pointed = index;
  render();
}

export function setUpWhere() {
  const toggle = $('where-toggle');
  toggle.checked = localStorage.getItem(WHERE_KEY) === 'on';
  state.where = toggle.checked;
  toggle.addEventListener('change', () => {
    localStorage.setItem(WHERE_KEY, toggle.checked ? 'on' : 'off');
    state.where = toggle.checked;
    render();
    // A photo on show is classified again with (or without) its maps; the camera's next frame
    // picks the change up by itself.
    if (toggle.checked) reclassify();
  });
  watchResults(showWhere);
  const results = $('results');
  results.addEventListener('pointerover', (event) => point(pointedIndex(event)));
  results.addEventListener('pointerleave', () => point(null));
  results.addEventListener('focusin', (event) => point(pointedIndex(event)));
  results.addEventListener('focusout', () => point(null));
  // The picture's displayed size changes as it loads and as the window does.
  const resized = new ResizeObserver(() => render());
  resized.observe($('preview-image'));
  resized.observe($('camera-video'));
  $('preview-image').addEventListener('load', () => render());
  $('camera-video').addEventListener('emptied', () => render()); // the camera stopped
}

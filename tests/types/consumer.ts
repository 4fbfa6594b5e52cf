// A strict TypeScript app written against @seed/glimpse's declarations (www/glimpse.d.ts):
// it touches every export, method, option and result field the JS API has, so a declaration
// that drifts from www/glimpse.js fails `npm run test:types`. Nothing here runs; tsc only reads it.
// `@ts-expect-error` lines prove that mistakes an integrator could make are caught, i.e. that
// the types are not loose enough to accept anything.

import {
  BackendError,
  Glimpse,
  GlimpseError,
  InvalidArgumentError,
  ModelLoadError,
  Teacher,
  UnsupportedImageError,
  clearModelCache,
  forgetBackendChoice,
  registerOfflineWorker,
  deleteClassSet,
  loadClassSet,
  saveClassSet,
} from '@seed/glimpse';
import type {
  Backend,
  BackendChoice,
  CaptionObject,
  CaptionOptions,
  CaptionResult,
  ClassAccuracy,
  Classification,
  ClassificationLike,
  ClassifyOptions,
  ClassSummary,
  GlimpseClassifyOptions,
  Group,
  ImageSource,
  LabelScore,
  LoadOptions,
  LoadProgress,
  Prediction,
  ProgressOptions,
  RestartInfo,
  TaughtPrediction,
  TeachSummary,
  TrainOptions,
  TrainProgress,
  WatchOptions,
  WatchResult,
  EngineStats,
  RgbaPixels,
  Where,
} from '@seed/glimpse';

declare const image: HTMLImageElement;
declare const svgImage: SVGImageElement;
declare const video: HTMLVideoElement;
declare const canvas: HTMLCanvasElement;
declare const offscreen: OffscreenCanvas;
declare const bitmap: ImageBitmap;
declare const frame: VideoFrame;
declare const pixels: ImageData;
declare const file: File;
declare const blob: Blob;

const show = (...values: unknown[]): void => console.log(...values);

declare const fileBytes: Uint8Array;
declare const fileBuffer: ArrayBuffer;
const rgba: RgbaPixels = { width: 2, height: 1, data: new Uint8Array(8) };
const sources: ImageSource[] = [image, svgImage, video, canvas, offscreen, bitmap, frame, pixels, file, blob, fileBytes, fileBuffer, rgba];
// @ts-expect-error a URL string is not a picture: fetch it into a Blob first
const notASource: ImageSource = 'photo.jpg';

const onLoad = ({ loaded, total, fromCache }: LoadProgress): void => show(loaded / total, fromCache);
const backends: BackendChoice[] = ['auto', 'webgpu', 'cpu'];
const loadOptions: LoadOptions = {
  models: new URL('/models/', location.href),
  backend: 'cpu',
  onProgress: onLoad,
  inline: false,
  dtype: 'f32',
  onRestart: ({ reason, backend, fallbackReason }: RestartInfo) => show(reason.length, backend satisfies Backend, fallbackReason?.length),
};
// @ts-expect-error 'gpu' is no backend
const wrongBackend: LoadOptions = { backend: 'gpu' };
const smallest: LoadOptions = { dtype: 'int8' };
// @ts-expect-error weights come in int8, f16 or f32 only
const wrongDtype: LoadOptions = { dtype: 'int4' };

function showPrediction({ index, label, prob, where }: Prediction): void {
  show(index, label, prob);
  if (where) showWhere(where);
}

function showWhere({ box, cover, cell, map, width, height, area }: Where): void {
  const [x0, y0, x1, y1] = box;
  const peak = map.reduce((a, b) => Math.max(a, b), -Infinity);
  show(x0, y0, x1, y1, cover, cell, peak, map.length === width * height, area[2] - area[0]);
}

function showGroup({ noun, synset, prob, members }: Group): void {
  show(noun, synset, prob);
  members.forEach(showPrediction);
}

function showLabel({ label, score, kind }: LabelScore): string {
  // Only a probability is a percentage; a similarity only orders labels.
  switch (kind) {
    case 'probability':
      return `${label} ${(score * 100).toFixed(1)}%`;
    case 'similarity':
      return label;
  }
}

function showTaught({ label, prob, similarity, resembles }: TaughtPrediction): void {
  show(label, prob, similarity.toFixed(2), resembles ? 'like it' : 'none of them');
}

function showClassification({ top, groups, labels, taught, ms, backend }: Classification): void {
  top.forEach(showPrediction);
  groups?.forEach(showGroup);
  labels?.map(showLabel);
  taught?.forEach(showTaught);
  const ran: Backend = backend;
  show(ms, ran);
}

function showCaption(result: CaptionResult): void {
  const { text, fallback, source, objects, certainty, backtracks, tokens, promptTokens, promptReused, ms, firstTokenMs } = result;
  const how: 'model' | 'rule' | 'fallback' = source;
  const sure: 'sure' | 'probable' | 'unsure' = certainty;
  show(text, fallback, how, sure, backtracks, tokens, promptTokens, promptReused, ms, firstTokenMs);
  objects.forEach(({ index, label, prob, box, position, synset }: CaptionObject) => {
    show(index, label, prob, position ?? 'alone', synset ?? 'a class');
    if (box) show(box[0], box[1], box[2], box[3]);
  });
}

function showSummary({ classes, trained, accuracy }: TeachSummary): void {
  classes.forEach(({ name, examples }: ClassSummary) => show(name, examples));
  accuracy.forEach(({ name, correct, total }: ClassAccuracy) => show(name, correct / total));
  show(trained);
}

/** What an app does with a failure: one message per kind, narrowed by `instanceof`. */
function explain(error: unknown): string {
  if (error instanceof ModelLoadError) return `download the model again: ${error.message}`;
  if (error instanceof UnsupportedImageError) return `pick another picture: ${error.message}`;
  if (error instanceof BackendError) return `this device cannot run it: ${error.message}`;
  if (error instanceof InvalidArgumentError) return `check the request: ${error.message}`;
  if (error instanceof GlimpseError) return `glimpse: ${error.message}`;
  if (error instanceof DOMException && error.name === 'AbortError') return 'cancelled';
  return String(error);
}

/** The same by `name`, as for an error that crossed from another realm. */
function kindOf(error: GlimpseError): string {
  if (error instanceof ModelLoadError) {
    const name: 'ModelLoadError' = error.name;
    return name;
  }
  // @ts-expect-error an InvalidArgumentError's name is its own, not BackendError's
  const mismatched: 'BackendError' = new InvalidArgumentError('no labels').name;
  return `${error.name}${mismatched}`;
}

async function main(): Promise<void> {
  const glimpse: Glimpse = await Glimpse.load(loadOptions);
  await Glimpse.load();
  show(glimpse.backend satisfies Backend, glimpse.fallbackReason?.length, glimpse.notCached?.length);
  const { timings } = glimpse.info;
  if (timings) show(timings.webgpu.toFixed(0), timings.cpu.toFixed(0), timings.remembered, timings.measuredAt.length);
  forgetBackendChoice();

  for (const source of sources) showClassification(await glimpse.classify(source));

  const options: ClassifyOptions = { topK: 3, labels: ['dog', 'bird', 'vehicle'], where: true };
  const result = await glimpse.classify(image, options);
  showClassification(result);
  const placed = result.top[0]?.where;
  if (placed) showWhere(placed);
  await glimpse.classify(blob, { labels: 'dog, bird, vehicle' });
  await glimpse.classify(video, { where: 'crop' });
  // @ts-expect-error where is a flag, 'whole' or 'crop'
  await glimpse.classify(blob, { where: 'everywhere' });
  // @ts-expect-error labels are strings
  await glimpse.classify(blob, { labels: [1, 2] });
  // @ts-expect-error topK is a count
  await glimpse.classify(blob, { topK: '5' });

  const progress: ProgressOptions = { onProgress: onLoad };
  await glimpse.loadLabelModel(progress);
  await glimpse.loadLabelModel();
  await glimpse.loadCaptionModel({ onProgress: ({ loaded, total }) => show(loaded, total) });
  await glimpse.loadCaptionModel();

  const controller = new AbortController();
  const captionOptions: CaptionOptions = { onToken: (piece) => show(piece), signal: controller.signal };
  showCaption(await glimpse.caption(frame, captionOptions));
  showCaption(await glimpse.caption(result));
  const described: ClassificationLike = { top: result.top };
  showCaption(await glimpse.caption(described));
  // @ts-expect-error a caption describes a picture or a classification, not text
  await glimpse.caption('a dog');

  const watchOptions: WatchOptions = {
    topK: 3,
    onError: (error) => show(explain(error)),
    classify: (v) => glimpse.classify(v, { labels: ['mug'] }),
  };
  const stop: () => void = glimpse.watch(video, (live: WatchResult) => show(live.fps, live.frame, live.mediaTime ?? 0, live.top[0]?.label), watchOptions);
  const { wasmMemoryBytes, live }: EngineStats = await glimpse.engineStats();
  show(wasmMemoryBytes, live.pictures + live.captions + live.sets);
  stop();
  glimpse.watch(video, ({ fps }) => show(fps))();
  // @ts-expect-error watching needs a video
  glimpse.watch(image, () => {});

  const teacher: Teacher = glimpse.teach();
  showSummary(await teacher.add('mug', video));
  showSummary(await teacher.add('plant', bitmap));
  showSummary(await teacher.remove('plant'));
  const train: TrainOptions = { onProgress: ({ done, total }: TrainProgress) => show(done / total) };
  showSummary(await teacher.train(train));
  showSummary(await teacher.train());
  show(teacher.classes.length, teacher.trained, teacher.accuracy.length);
  const taught = await teacher.classify(video, { topK: 1, labels: 'mug', where: false });
  taught.taught?.forEach(showTaught);
  // @ts-expect-error a teacher ranks its own set; the engine's set id is not an option here
  await teacher.classify(video, { set: 1 });
  const viaGlimpse: GlimpseClassifyOptions = { set: 1, topK: 5 };
  show(viaGlimpse);
  const json: string = await teacher.export();
  showSummary(await teacher.import(json));
  showSummary(await teacher.import(new Blob([json], { type: 'application/json' })));
  await teacher.save();
  await teacher.save('kitchen');
  const restored: boolean = await teacher.restore('kitchen');
  show(restored, await teacher.restore());
  teacher.dispose();

  await saveClassSet('kitchen', json);
  const saved: string | null = await loadClassSet('kitchen');
  show(saved?.length);
  await deleteClassSet('kitchen');
  await clearModelCache();
  const registration: ServiceWorkerRegistration | null = await registerOfflineWorker('/sw.js', { scope: '/' });
  show(registration?.scope);

  glimpse.dispose();
  // @ts-expect-error made by Glimpse.load only
  new Glimpse();
  // @ts-expect-error made by glimpse.teach() only
  new Teacher();
}

main().catch((error: unknown) => show(explain(error), error instanceof GlimpseError ? kindOf(error) : null));
show(backends, notASource, wrongBackend, smallest, wrongDtype);

// Teachable classes: examples of your own classes (photos, camera frames) become a small head
// on top of the image model's features, trained in the engine in a moment.
//
//   const teacher = glimpse.teach();
//   await teacher.add('mug', photo);            // each example: one pass of the image model
//   await teacher.add('plant', cameraVideo);
//   const { accuracy } = await teacher.train({ onProgress });
//   const { taught } = await teacher.classify(video);   // [{ label, prob }], best first
//   const json = await teacher.export();                // later: teacher.import(json)

import { InvalidArgumentError } from './errors.js';
import { toInput } from './frames.js';
import { loadClassSet, saveClassSet } from './class-store.js';

/** The engine's limit on an exported set (src/vision/teach.rs), checked before a file is read. */
const MAX_SET_BYTES = 50_000_000;

export class Teacher {
  #glimpse;
  #send; // posts a message to the glimpse's engine, in turn (Glimpse#send)
  #set; // the engine's id for this set, once it exists
  #summary = { classes: [], trained: false, accuracy: [] };
  #disposed = false;

  /** Made by `glimpse.teach()`, which hands over its engine's message channel. */
  constructor(glimpse, send) {
    this.#glimpse = glimpse;
    this.#send = send;
    this.#set = send({ type: 'teach.new' });
  }

  async #call(type, fields = {}, transfer = []) {
    if (this.#disposed) throw new InvalidArgumentError('this set of classes was disposed');
    const set = await this.#set;
    return this.#send({ type, set, ...fields }, transfer);
  }

  async #update(summaryPromise) {
    this.#summary = await summaryPromise;
    return this.#summary;
  }

  /** `[{ name, examples }]` as of the last change. */
  get classes() {
    return this.#summary.classes;
  }

  /** True when the head is trained on the current examples. */
  get trained() {
    return this.#summary.trained;
  }

  /** Leave-one-out accuracy of the last training: `[{ name, correct, total }]`. */
  get accuracy() {
    return this.#summary.accuracy;
  }

  /** Adds one example of class `name` (created if new). Resolves to the set's summary. */
  async add(name, source) {
    if (typeof name !== 'string' || !name.trim()) throw new InvalidArgumentError('a class needs a name');
    const { input, transfer } = await toInput(source);
    return this.#update(this.#call('teach.add', { name: name.trim(), input }, transfer));
  }

  /** Removes class `name` and its examples. */
  remove(name) {
    return this.#update(this.#call('teach.remove', { name }));
  }

  /**
   * Trains the head on every example (features were taken when they were added, so this is
   * quick). `onProgress({ done, total })`. Resolves to the summary with `accuracy`; rejects
   * with an InvalidArgumentError when there are fewer than two classes or an empty one.
   */
  async train({ onProgress } = {}) {
    const total = this.#summary.classes.reduce((n, c) => n + c.examples, 0);
    onProgress?.({ done: 0, total });
    const summary = await this.#update(this.#call('teach.train'));
    onProgress?.({ done: total, total });
    return summary;
  }

  /**
   * `{ taught: [{ label, prob }], top, ms, backend }` (and `labels` and `where` when asked
   * for, as in `Glimpse.classify`); needs a trained head.
   */
  async classify(source, { topK = 5, labels, where } = {}) {
    if (!this.#summary.trained) {
      throw new InvalidArgumentError('train the classes first (teacher.train())');
    }
    const set = await this.#set;
    return this.#glimpse.classify(source, { topK, labels, set, where });
  }

  /** The whole set (classes, examples' features, head) as a JSON string. */
  export() {
    return this.#call('teach.export');
  }

  /** Replaces this set with an exported one (a JSON string, or a File/Blob holding it). */
  async import(json) {
    const isBlob = typeof Blob !== 'undefined' && json instanceof Blob;
    // A string's length in UTF-16 units is at most its UTF-8 size, which the engine limits.
    const size = isBlob ? json.size : typeof json === 'string' ? json.length : 0;
    if (size > MAX_SET_BYTES) {
      throw new InvalidArgumentError(
        `this is not a usable teachable-classes file: it is ${(size / 1e6).toFixed(1)} MB; the limit is ${MAX_SET_BYTES / 1e6} MB`,
      );
    }
    const text = isBlob ? await json.text() : json;
    if (typeof text !== 'string') throw new InvalidArgumentError('import() takes the JSON text or a file');
    return this.#update(this.#call('teach.import', { json: text }));
  }

  /** Keeps the set in this browser (IndexedDB) under `key`. */
  async save(key = 'default') {
    await saveClassSet(key, await this.export());
  }

  /** Restores the set saved under `key`; resolves to false when there is none. */
  async restore(key = 'default') {
    const json = await loadClassSet(key);
    if (json === null) return false;
    await this.import(json);
    return true;
  }

  /** Frees the set in the engine. */
  dispose() {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#set.then((set) => this.#send({ type: 'teach.drop', set })).catch(() => {});
  }
}

// Keeps taught class sets (the JSON documents `Teacher.export()` writes) in IndexedDB, so that
// classes taught on one visit are there on the next.

const DB_NAME = 'glimpse-classes';
const STORE = 'sets';

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function open() {
  if (typeof indexedDB === 'undefined') throw new Error('this browser has no IndexedDB');
  const req = indexedDB.open(DB_NAME, 1);
  req.onupgradeneeded = () => req.result.createObjectStore(STORE);
  return request(req);
}

async function withStore(mode, work) {
  const db = await open();
  try {
    const tx = db.transaction(STORE, mode);
    const done = new Promise((resolve, reject) => {
      tx.oncomplete = resolve;
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new Error('the transaction was aborted'));
    });
    const result = await request(work(tx.objectStore(STORE)));
    await done;
    return result;
  } finally {
    db.close();
  }
}

/** Stores a class set's JSON document under `key`. */
export function saveClassSet(key, json) {
  return withStore('readwrite', (store) => store.put(json, key));
}

/** The JSON document stored under `key`, or null. */
export async function loadClassSet(key) {
  return (await withStore('readonly', (store) => store.get(key))) ?? null;
}

export function deleteClassSet(key) {
  return withStore('readwrite', (store) => store.delete(key));
}

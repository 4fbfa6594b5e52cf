import { defineConfig } from 'vite';

export default defineConfig({
  build: { target: 'es2022' },
  // The engine's worker is an ES module (it imports the wasm bindings).
  worker: { format: 'es' },
});

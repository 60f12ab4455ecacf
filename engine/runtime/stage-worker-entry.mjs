// Entry of a stage worker thread (runtime/pipeline.ts) when the engine runs from its TypeScript sources through tsx's
// loader (the tests, and bin/ttt-workbench.js without a current build): a loader registered on the main thread does
// not reach worker threads, so each worker registers its own before importing the stage code. The compiled engine
// (dist/engine) starts its workers from stage-worker.js directly.
import { register } from 'tsx/esm/api';

register();
await import('./stage-worker.ts');

// Entry of a stage worker thread (runtime/pipeline.ts). The engine runs from its TypeScript sources through tsx's
// loader (bin/ttt-workbench.js, the tests, and the packaged app alike), and a loader registered on the main thread
// does not reach worker threads: each worker registers its own before importing the stage code.
import { register } from 'tsx/esm/api';

register();
await import('./stage-worker.ts');

/** The engine process's supervisor, shared with web mode's server (engine/server/engine-process.ts). */
export { EngineProcess, type EngineProcessOptions, type EngineState, type SpawnEngine } from '../engine/server/engine-process.js';

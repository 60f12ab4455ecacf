import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

const pureEngine = ['engine/core/**/*.ts', 'engine/models/**/*.ts'];

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'out/**', '.vite/**', 'scripts/_*'] },
  { languageOptions: { globals: { ...globals.node } } },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['engine/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['electron', 'electron/*', 'react', 'react-dom', 'react/*'], message: 'The engine never imports electron or react.' },
          { group: ['**/renderer/**', '../renderer/*'], message: 'The engine never imports the renderer.' },
        ],
      }],
    },
  },
  {
    files: pureEngine,
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['node:*', 'fs', 'path', 'os', 'child_process', 'worker_threads'], message: 'engine/core and engine/models are pure: file and process access lives in engine/io, engine/analysis, engine/runtime.' },
          { group: ['electron', 'react', '**/renderer/**'], message: 'The engine never imports electron, react or the renderer.' },
        ],
      }],
      'no-restricted-globals': ['error', 'process'],
      'no-console': 'error',
    },
  },
  {
    // The renderer reaches the engine only through the protocol, and main only through the preload's API.
    files: ['renderer/**/*.{ts,tsx}'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      'no-restricted-imports': ['error', {
        paths: [{ name: 'electron', message: 'The renderer is sandboxed: use window.workbench (types in electron/api.ts).' }],
        patterns: [
          { group: ['**/engine/**', '!**/engine/protocol.js', '!**/engine/protocol.ts', '!**/engine/protocol'], message: 'The renderer imports only engine/protocol.ts from the engine.' },
          { group: ['**/electron/**', '!**/electron/api.js', '!**/electron/api.ts'], message: 'The renderer may use only the preload API types (electron/api.ts).' },
          { group: ['node:*'], message: 'The renderer is sandboxed: no Node APIs.' },
        ],
      }],
    },
  },
  {
    files: ['electron/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      'no-restricted-imports': ['error', {
        patterns: [{ group: ['**/renderer/**', 'react', 'react-dom'], message: 'Main and preload never import the renderer.' }],
      }],
    },
  },
  {
    files: ['**/*.test.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
);

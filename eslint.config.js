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
    files: ['**/*.test.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
);

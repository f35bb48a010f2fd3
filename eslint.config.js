// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**'] },
  js.configs.recommended,
  {
    files: ['bin/**/*.js', 'eslint.config.js'],
    languageOptions: { globals: { process: 'readonly' } },
  },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-empty': ['error', { allowEmptyCatch: false }],
    },
  },
  {
    // Only adapters talk to Google: the adapters, the Firestore state store, the function's host
    // and the emulator (which loads Google's protos) may import Google's libraries.
    files: ['src/**/*.ts'],
    ignores: [
      'src/adapters/**',
      'src/function/index.ts',
      'src/emulator/**',
      'src/core/**',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@google-cloud/*', 'google-gax'],
              message: 'Only adapters import Google libraries.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['node:*', 'fs', 'path', 'http', 'https', 'child_process'],
              message: 'The core has no I/O.',
            },
            {
              group: ['@google-cloud/*', '@grpc/*', 'google-gax'],
              message: 'Only adapters talk to Google.',
            },
          ],
        },
      ],
      'no-restricted-properties': [
        'error',
        {
          object: 'Date',
          property: 'now',
          message: 'The core has no clock: take the time as input.',
        },
      ],
    },
  },
);

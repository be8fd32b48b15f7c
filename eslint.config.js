// `npm run lint`: eslint's and typescript-eslint's recommended rules, the type-aware set, over the
// code, the machines, the tests, the benches, the soak and the scripts (tsc already checks the
// types; these catch what compiles but is likely wrong: floating promises, awaits of non-promises,
// unused code, misused spreads). Kept to the recommended sets, with the few changes below, each
// with its reason, so that new code passes by being ordinary TypeScript.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['dist/', 'dist.*/', 'node_modules/', 'docs/', 'data/', 'tmp/'] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      // Each file's nearest tsconfig.json: the root one, or the dashboard's (browser code).
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // `_name` marks a parameter or binding kept for its position or shape.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      // node:test's test() and describe() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] }] }],
      // Async by contract without awaiting anything is common here and fine: fastify plugins and
      // handlers, drivers implementing an async interface (a throw becomes a rejection).
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // Tests, benches, the soak and the scripts read untyped data (JSON bodies, WebSocket frames,
    // JSON schemas, fixtures) and check it by assertion, and swap methods of fakes; the rules
    // about `any` and stringification stay for the code that ships (src, machines).
    files: ['test/**', 'bench/**', 'soak/**', 'scripts/**'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-base-to-string': 'off',
      '@typescript-eslint/restrict-plus-operands': 'off',
      '@typescript-eslint/restrict-template-expressions': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  {
    // Plain JavaScript (the launcher, the version check, the test runner): no types to check.
    files: ['**/*.{js,mjs,cjs}'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: globals.node },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
  },
);

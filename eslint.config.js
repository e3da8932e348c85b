// ESLint flat config: typed linting (typescript-eslint recommendedTypeChecked) for the library in
// src/, the lighter untyped recommended set for tests, benches, examples and scripts.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'docs/api/', 'node_modules/'] },
  js.configs.recommended,
  {
    files: ['src/**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { project: './tsconfig.build.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Rejecting with an AbortSignal's reason (or a caught unknown) is the Node convention.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingAny: true, allowThrowingUnknown: true }],
      // Bad network input: values the types say cannot occur are still checked and reported.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNever: true, allowNumber: true }],
      // `22 | 16 | ... | number` documents the known values while accepting any number.
      '@typescript-eslint/no-redundant-type-constituents': 'off',
      // async functions and generators that satisfy an async interface need not await.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'examples/**/*.ts', 'scripts/**/*.ts'],
    extends: [tseslint.configs.recommended],
    rules: {
      // These compile to build/, where ../src/ does not exist: they use the library compiled in dist/.
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/src/*', '**/src/**'], message: "Import '#lib/<module>.js' (tests, benches) or 'audiosocket' (examples)." },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.ts'],
    rules: {
      // `let x;` declared before a cleanup closure that reads it, then assigned once, stays `let`.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // A leading underscore marks a binding kept on purpose (destructuring, positional parameters).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
);

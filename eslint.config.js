// Lint rules that guard the architecture as well as style: the deterministic
// core must reach time, randomness, network and disk only through src/core's
// injected environment, so sim/ can replay any run from its seed.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const nondeterminism = [
  { name: 'node:net', message: 'Protocol code talks to peers through the injected Transport (src/core/env.ts).' },
  { name: 'node:fs', message: 'Protocol code touches disk through the injected FileSystem (src/core/env.ts).' },
  { name: 'node:fs/promises', message: 'Protocol code touches disk through the injected FileSystem (src/core/env.ts).' },
];

export default tseslint.config(
  { ignores: ['dist/**', 'dist-all/**', 'node_modules/**', 'data/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    files: ['src/ring/**', 'src/membership/**', 'src/replication/**', 'src/antientropy/**', 'src/ratelimit/**'],
    rules: {
      'no-restricted-imports': ['error', { paths: nondeterminism }],
      'no-restricted-properties': ['error',
        { object: 'Date', property: 'now', message: 'Use the injected Clock.' },
        { object: 'Math', property: 'random', message: 'Use the injected Random.' },
      ],
      'no-restricted-globals': ['error',
        { name: 'setTimeout', message: 'Use the injected Clock.' },
        { name: 'setInterval', message: 'Use the injected Clock.' },
      ],
    },
  },
);

import js from '@eslint/js'
import tseslint from 'typescript-eslint'

// ARCHITECTURE.md, "Arrows that must never exist": each folder is entered through its index.ts
const throughDoors = {
  group: ['../*/*', '!../*/index.js', './*/*', '!./*/index.js', '!./app/*'],
  message: 'import another folder through its index.ts (ARCHITECTURE.md)'
}
const restricted = (...patterns) => ['error', { patterns: [throughDoors, ...patterns] }]

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', '.tap/', 'var/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', Buffer: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }]
    }
  },
  {
    // the console runs in the browser (console/, no build step)
    files: ['console/**/*.js'],
    languageOptions: { sourceType: 'module', globals: { window: 'readonly', document: 'readonly', fetch: 'readonly', sessionStorage: 'readonly', URLSearchParams: 'readonly' } }
  },
  {
    // the CLI prints to the terminal; the gateway itself logs through pino
    files: ['src/**/*.ts'],
    ignores: ['src/cli/**', 'src/demo/**'],
    rules: { 'no-console': 'error' }
  },
  { files: ['src/**/*.ts'], rules: { '@typescript-eslint/no-restricted-imports': restricted() } },
  {
    files: ['src/routing/**/*.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': restricted({ group: ['fastify', 'undici', 'ioredis', 'node:fs', 'node:http', '../state/*', '../proxy/*', '../admin/*'], allowTypeImports: true, message: 'routing/ is pure: no I/O, no Fastify (ARCHITECTURE.md)' }) }
  },
  {
    files: ['src/state/**/*.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': restricted({ group: ['../cluster/*'], message: 'state/ never depends on cluster/: the root injects the IPC store (ARCHITECTURE.md)' }) }
  },
  {
    files: ['src/metrics/**/*.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': restricted({ group: ['../proxy/*'], message: 'metrics/ never depends on proxy/ (ARCHITECTURE.md)' }) }
  },
  {
    files: ['src/demo/backend.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': restricted({ group: ['../*'], message: 'the sample systems stand alone (ARCHITECTURE.md)' }) }
  }
)

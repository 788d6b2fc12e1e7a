// One jest run for the whole workspace: each package is a project, so `pnpm test` runs them all.
// TypeScript is transformed by SWC (fast, no type-check: `pnpm build` type-checks); coverage is V8's.
const swc = [
  '@swc/jest',
  {
    jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
    module: { type: 'es6' },
    sourceMaps: 'inline',
  },
];

/** @param {string} dir @param {string} name */
function project(dir, name) {
  const root = '../'.repeat(dir.split('/').length);
  return {
    displayName: name,
    rootDir: `<rootDir>/${dir}`,
    testEnvironment: 'node',
    extensionsToTreatAsEsm: ['.ts'],
    transform: { '^.+\\.ts$': swc },
    moduleNameMapper: {
      // Workspace packages resolve to their sources, so tests never need a build.
      '^@cryptoutil/([a-z-]+)/testing$': `<rootDir>/${root}packages/$1/src/testing/index.ts`,
      '^@cryptoutil/([a-z-]+)$': `<rootDir>/${root}packages/$1/src/index.ts`,
      '^(\\.{1,2}/.*)\\.js$': '$1',
    },
    testMatch: ['<rootDir>/src/**/*.test.ts', '<rootDir>/test/**/*.test.ts'],
  };
}

/** @type {import('jest').Config} */
export default {
  projects: [
    project('packages/infra', 'infra'),
    project('packages/tls', 'tls'),
    project('packages/jose-authority', 'jose-authority'),
    project('apps/kms', 'kms'),
    project('apps/identity', 'identity'),
    project('e2e', 'e2e'),
    project('tools', 'tools'),
  ],
  testTimeout: 60_000,
  // Two test files at a time: most of the suite waits on processes, TLS and databases rather than on a
  // core, so a second worker nearly halves the wall time on a 2-core machine (jest's default is cores - 1).
  maxWorkers: 2,
  reporters: ['default', '<rootDir>/tools/jest-summary-reporter.js'],
  coverageProvider: 'v8',
  collectCoverage: true,
  coverageReporters: ['text-summary', 'text', 'html', 'json-summary'],
  // main.ts files are composition roots, exercised as real processes (apps/*/test/processes.test.ts).
  collectCoverageFrom: [
    '{packages,apps}/*/src/**/*.ts',
    '!**/*.test.ts',
    '!**/testing/**',
    '!**/generated/**',
    '!apps/*/src/main.ts',
  ],
  coverageThreshold: {
    './packages/infra/src/': { lines: 80, branches: 80 },
    './packages/tls/src/': { lines: 80, branches: 80 },
    './packages/jose-authority/src/': { lines: 80, branches: 80 },
    './apps/kms/src/': { lines: 80, branches: 80 },
    './apps/identity/src/': { lines: 80, branches: 80 },
  },
};

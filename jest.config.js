/** Jest transpiles TypeScript without type checking (fast); `npm test` runs `tsc --noEmit` first. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.tsx?$': 'ts-jest' },
  snapshotSerializers: ['<rootDir>/test/support/template-serializer.ts'],
  setupFilesAfterEnv: ['aws-cdk-lib/testhelpers/jest-autoclean'],
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  testTimeout: 60000,
  // Jest's default (cores - 1) runs one file at a time on a 2-core machine; most suites wait on
  // moto, sshd or child processes, so three workers finish far sooner without starving each other.
  maxWorkers: 3,
};

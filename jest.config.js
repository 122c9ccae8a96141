// Jest runs the compiled JavaScript (npm test builds first with tsc): no ts-jest, so the
// TypeScript version is ours to pin and the tests run exactly the code users get.
/** @type {import('jest').Config} */
module.exports = {
  testMatch: ['<rootDir>/dist/test/**/*.test.js'],
  globalSetup: '<rootDir>/dist/test/support/global-setup.js',
  globalTeardown: '<rootDir>/dist/test/support/global-teardown.js',
  setupFilesAfterEnv: ['<rootDir>/dist/test/support/thread-check.js'],
  testTimeout: 60000,
  maxWorkers: 2,
  verbose: false,
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
};

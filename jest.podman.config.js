// `npm run test:podman`: the end-to-end run through Podman's CNI backend (test/e2e/podman.e2e.ts).
// Kept out of `npm test`: it needs podman, runc and busybox-static installed.
const base = require('./jest.config.js');
/** @type {import('jest').Config} */
module.exports = { ...base, testMatch: ['<rootDir>/dist/test/e2e/**/*.e2e.js'], maxWorkers: 1 };

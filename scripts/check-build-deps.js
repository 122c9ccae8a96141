#!/usr/bin/env node
// Runs before node-gyp compiles the addon (package.json "install", `npm run prebuilds`): without
// pkg-config or one of the three -dev packages, gyp fails 50 lines deep with no package names.
// This stops first with one line per missing piece and the package that provides it.
'use strict';
const { spawnSync } = require('node:child_process');

/** pkg-config module -> the package that ships its .pc file, per distribution. */
const LIBRARIES = [
  { module: 'libnl-3.0', debian: 'libnl-3-dev', fedora: 'libnl3-devel', alpine: 'libnl3-dev' },
  { module: 'libnl-route-3.0', debian: 'libnl-route-3-dev', fedora: 'libnl3-devel', alpine: 'libnl3-dev' },
  { module: 'libnftables', debian: 'libnftables-dev', fedora: 'nftables-devel', alpine: 'nftables-dev' },
];

function missingModules() {
  const probe = spawnSync('pkg-config', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return null; // no pkg-config at all
  return LIBRARIES.filter((l) => spawnSync('pkg-config', ['--exists', l.module]).status !== 0);
}

function main() {
  const missing = missingModules();
  const lines = [];
  if (missing === null) {
    lines.push('netns-kit: pkg-config not found (Debian/Ubuntu: pkg-config, Fedora: pkgconf-pkg-config, Alpine: pkgconf)');
  } else {
    for (const l of missing) {
      lines.push(`netns-kit: ${l.module} not found by pkg-config (Debian/Ubuntu: ${l.debian}, Fedora: ${l.fedora}, Alpine: ${l.alpine})`);
    }
  }
  if (lines.length === 0) return 0;
  const uniq = (k) => [...new Set((missing ?? LIBRARIES).map((l) => l[k]))].join(' ');
  lines.push(
    'netns-kit: the native addon must be compiled here (no prebuilt binary fits this system); install the build dependencies:',
    `  Debian/Ubuntu: apt-get install build-essential python3 pkg-config ${uniq('debian')}`,
    `  Fedora:        dnf install gcc-c++ make python3 pkgconf-pkg-config ${uniq('fedora')}`,
    `  Alpine:        apk add build-base python3 pkgconf linux-headers ${uniq('alpine')}`,
    '  then: npm rebuild netns-kit',
  );
  process.stderr.write(lines.join('\n') + '\n');
  return 1;
}

process.exitCode = main();

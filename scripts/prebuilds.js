#!/usr/bin/env node
// `npm run prebuilds`: builds the prebuilt addon that ships in the package, so installs need no
// compiler (node-gyp-build loads it; compiling from source is only the fallback).
//
//   node scripts/prebuilds.js                  clean build with prebuildify (what a release runs):
//                                              prebuilds/linux-x64/netns-kit.glibc.node, stripped
//   node scripts/prebuilds.js --check          exit 1 unless that file exists (prepublishOnly)
//   node scripts/prebuilds.js --from-build DIR  put the addon already compiled in build/Release
//                                              into DIR/prebuilds/... under the same name (the
//                                              package test: same sources, same flags, no second
//                                              35 s compile)
//
// Beside the addon goes the CNI plugin's native client (binding.gyp's second target, libc only):
// prebuilds/linux-x64/netns-kit-cni. Like build/Release/ it sits two levels below the package
// root, which is where the client looks for dist/bin/netns-kit-cni.js when it runs the plugin.
//
// One binary serves every Node >= 20: binding.gyp pins NAPI_VERSION=8 (Node-API is ABI-stable),
// so the file carries no ABI tag. It links libnl-3, libnl-route-3 and libnftables dynamically;
// lib/native.ts names the runtime packages when one is missing.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const TUPLE = `${process.platform}-${process.arch}`;
// prebuildify's name: <package name>.<libc tag>.node (no ABI tag with --napi)
const FILE = 'netns-kit.glibc.node';
const CLIENT = 'netns-kit-cni';

/** Copies the client compiled in build/Release next to the prebuilt addon in `dir`, stripped. */
function copyClient(dir) {
  const src = path.join(root, 'build', 'Release', CLIENT);
  if (!fs.existsSync(src)) throw new Error(`${src} is missing: build it first (node-gyp build)`);
  fs.copyFileSync(src, path.join(dir, CLIENT));
  fs.chmodSync(path.join(dir, CLIENT), 0o755);
  spawnSync('strip', ['--strip-all', path.join(dir, CLIENT)], { stdio: 'inherit' });
}

/** npm's own node-gyp (npm run puts it on PATH; run directly, the script finds it itself). */
function nodeGyp() {
  if (process.env.npm_config_node_gyp) return process.env.npm_config_node_gyp;
  const npmDir = path.dirname(path.dirname(fs.realpathSync(path.join(path.dirname(process.execPath), 'npm'))));
  const bundled = path.join(npmDir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  return fs.existsSync(bundled) ? bundled : 'node-gyp';
}

/**
 * The headers of the running Node when they are installed beside it (a distribution's or the
 * official tarball's layout): node-gyp then builds offline instead of downloading them.
 */
function nodeDir() {
  if (process.env.npm_config_nodedir) return {};
  const prefix = path.dirname(path.dirname(process.execPath));
  return fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? { npm_config_nodedir: prefix } : {};
}

function run(cmd, args, env = process.env) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env });
  if (r.error) throw r.error;
  if (r.status !== 0) process.exit(r.status ?? 1);
}

function main(argv) {
  if (argv[0] === '--check') {
    const f = path.join(root, 'prebuilds', TUPLE, FILE);
    if (!fs.existsSync(f)) {
      process.stderr.write(`netns-kit: ${path.relative(root, f)} is missing: run \`npm run prebuilds\` before publishing\n`);
      process.exit(1);
    }
    return;
  }
  if (process.platform !== 'linux') throw new Error('netns-kit builds for Linux only');
  run(process.execPath, [path.join(__dirname, 'check-build-deps.js')]);
  if (argv[0] === '--from-build') {
    const out = path.resolve(argv[1] ?? root);
    const src = path.join(root, 'build', 'Release', 'netns_kit.node');
    if (!fs.existsSync(src)) throw new Error(`${src} is missing: build the addon first (npx node-gyp rebuild)`);
    const dir = path.join(out, 'prebuilds', TUPLE);
    fs.mkdirSync(dir, { recursive: true });
    fs.copyFileSync(src, path.join(dir, FILE));
    spawnSync('strip', ['--strip-all', path.join(dir, FILE)], { stdio: 'inherit' });
    copyClient(dir);
    process.stdout.write(`${path.join(dir, FILE)}\n${path.join(dir, CLIENT)}\n`);
    return;
  }
  // The current Node's own version as the target: node-gyp then builds against the local headers
  // (npm's nodedir) instead of downloading those of the newest Node release.
  run(process.execPath, [
    require.resolve('prebuildify/bin.js'),
    '--napi',
    '--strip',
    '--tag-libc',
    `--target=node@${process.versions.node}`,
  ], { ...process.env, PREBUILD_NODE_GYP: process.env.PREBUILD_NODE_GYP || nodeGyp(), ...nodeDir() });
  copyClient(path.join(root, 'prebuilds', TUPLE)); // prebuildify's node-gyp run built it too
  process.stdout.write(`prebuilds/${TUPLE}/${FILE}\nprebuilds/${TUPLE}/${CLIENT}\n`);
}

main(process.argv.slice(2));

#!/usr/bin/env bash
# Runs the test suite against an AddressSanitizer/LeakSanitizer build of the addon (`npm run test:asan`).
# Node itself is not instrumented: libasan is preloaded, leaks inside node/V8 are suppressed, and
# any report that involves our code fails the run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/netns-kit-asan.XXXXXX)
chmod 755 "$work"  # the permission tests load the addon as an unprivileged user
trap '[ -n "${KEEP_ASAN:-}" ] || rm -rf "$work"' EXIT
cp -r "$root/binding.gyp" "$root/native" "$root/package.json" "$root/scripts" "$work/"
ln -s "$root/node_modules" "$work/node_modules"
(cd "$work" && CXXFLAGS="-fsanitize=address -fno-omit-frame-pointer -g -O1" LDFLAGS="-fsanitize=address" npm run install --silent >/dev/null)
cat > "$work/lsan.supp" <<'SUPP'
leak:node::
leak:v8::
leak:uv_
leak:/usr/local/bin/node
leak:/usr/bin/node
SUPP
mkdir -p "$work/logs"
cd "$root"
npm run build --silent
status=0
# Default: the suites that drive the native code (core, NAT, events, bulk, embedding, sockets, tc,
# routing, undecodable listings); arguments choose others.
suites=("$@")
((${#suites[@]})) || suites=(dist/test/0 dist/test/09-nat dist/test/watch dist/test/bulk dist/test/11-embed dist/test/sockets dist/test/tc.test dist/test/routing.test dist/test/listings)
NETNS_KIT_ADDON="$work/build/Release/netns_kit.node" \
NK_SOAK_CYCLES=1000 \
LD_PRELOAD="$(gcc -print-file-name=libasan.so)" \
ASAN_OPTIONS="detect_leaks=1:log_path=$work/logs/asan:abort_on_error=0" \
LSAN_OPTIONS="suppressions=$work/lsan.supp:print_suppressions=0:exitcode=0" \
  npx jest --testTimeout=300000 "${suites[@]}" || status=$?
# Leak reports do not change exit codes (exitcode=0), so the tools the tests run still work; the
# reports are collected from the log files instead. Child processes the tests start (ip, ping, nsenter, ...) inherit the preload and report their own
# leaks; only reports that involve the addon count.
ours=$(grep -l -E 'netns_kit\.node|/native/' "$work"/logs/asan* 2>/dev/null || true)
others=$(find "$work/logs" -name "asan*" 2>/dev/null | wc -l)
echo "sanitizer logs: $others from all processes, $(echo -n "$ours" | grep -c . || true) involving the addon"
if [ -n "$ours" ]; then
  cat $ours >&2
  status=1
fi
[ "$status" = 0 ] && echo "AddressSanitizer/LeakSanitizer: no reports"
exit "$status"

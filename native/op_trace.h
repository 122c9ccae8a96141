// NK_OP_TRACE=1 prints one line per single-operation job on stderr (like NK_BULK_TRACE for the
// bulk path): how long it waited in the queue, ran on the worker, and waited for the main thread
// to settle its promise, in microseconds. For the benchmark's investigations only.
#pragma once
#include <time.h>

#include <cstdio>
#include <cstdlib>

namespace nk {

struct OpTrace {
  double submitted = 0, started = 0, executed = 0;

  static bool On() {
    static const bool on = getenv("NK_OP_TRACE") != nullptr;
    return on;
  }
  static double Now() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
  }
  // Called as the promise settles, right before the JS continuation runs: the `nk-js OP` line
  // that lib/op-trace.ts prints next names the operation.
  void Print() const {
    fprintf(stderr, "nk-op queued=%.0fus execute=%.0fus settle=%.0fus\n", started - submitted, executed - started,
            Now() - executed);
  }
};

}  // namespace nk

// The addon's own threads. Every native operation runs here, never on the main thread or on
// libuv's pool (which also serves fs, dns and crypto and must never change namespace).
// A finished job is handed back to the main thread through one thread-safe function, where it
// settles its promise.
#pragma once
#include <napi.h>

#include <memory>

#include "op_error.h"
#include "op_trace.h"

namespace nk {

class Job {
 public:
  virtual ~Job() = default;
  // Runs on a worker thread. Touches only the job's own plain data; reports failure in `error`.
  virtual void Execute() = 0;
  // Runs on the main thread after a successful Execute(): builds the resolved value.
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }

  OpError error;
  Napi::Promise::Deferred* deferred = nullptr;  // owned by the pool while the job is queued
  OpTrace trace;                                // NK_OP_TRACE timings
};

// Number of worker threads: namespace creation and libnftables are the slow, parallel-friendly
// parts; netlink operations serialise on the kernel's rtnl lock anyway.
constexpr int kWorkerThreads = 4;

void InitWorkerPool(Napi::Env env);
// Queues the job and returns the promise it will settle.
Napi::Promise Submit(Napi::Env env, std::unique_ptr<Job> job);
// Plain-data conversion of an OpError for promise rejection.
Napi::Object ErrorToJs(Napi::Env env, const OpError& e);

}  // namespace nk

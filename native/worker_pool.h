// The addon's own threads. Every native operation runs here, never on the main thread or on
// libuv's pool (which also serves fs, dns and crypto and must never change namespace).
//
// The threads are shared by every Node environment of the process (the main thread and any number
// of worker_threads); what belongs to one environment (its thread-safe function, its error
// factory, its watch thread) lives in per-environment instance data (see EnvLink). A finished job
// is handed back to the environment that submitted it through that environment's thread-safe
// function, where it settles its promise. A job that finishes after its environment is gone (a
// Worker terminated mid-call) is dropped without touching JavaScript.
#pragma once
#include <napi.h>

#include <atomic>
#include <memory>
#include <mutex>

#include "op_error.h"
#include "op_trace.h"

namespace nk {

class Job {
 public:
  virtual ~Job() = default;
  // Runs on a worker thread. Touches only the job's own plain data; reports failure in `error`.
  // May also run when the submitting environment is already gone: it must not touch JavaScript.
  virtual void Execute() = 0;
  // Runs on the submitting environment's thread after a successful Execute(): builds the
  // resolved value.
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }

  // How long the submitting thread may wait for this job right after submitting it, when it is
  // the environment's only job in flight (see Submit). Jobs that take much longer than a netlink
  // round trip (namespace creation: unshare, mounts) say 0: waiting for them would only hold up
  // the event loop.
  virtual int CallerWaitMicros() const { return kCallerWaitMicros; }
  static constexpr int kCallerWaitMicros = 150;

  OpError error;
  Napi::Promise::Deferred* deferred = nullptr;  // owned by the pool while the job is queued
  OpTrace trace;                                // NK_OP_TRACE timings
  // Who settles the job: the thread-safe function (kDeliver), or the submitting thread, which is
  // waiting for it (kCallerWaits until the worker hands it over with kCallerSettles). Internal.
  enum Handoff : int { kDeliver = 0, kCallerWaits = 1, kCallerSettles = 2 };
  std::atomic<int> handoff{kDeliver};
};

// A single call costs two thread hand-offs besides its work: a worker waking up for it, and the
// main thread waking up for its result. On a virtual machine each wake-up of a sleeping thread
// is 50-100 us, about what a netlink round trip itself costs. So, as a single-threaded C program
// never pays them, a worker that has just finished a job keeps polling the queue for
// kWorkerWaitMicros before it sleeps (the next call of an `await` loop comes within that), and
// the submitting thread polls for a quick job's result (Job::CallerWaitMicros) when it is its
// environment's only job in flight. NETNS_KIT_SPIN=0 turns both off (no polling, every result
// through the event loop), for embedders who count CPU time over latency.
constexpr int kWorkerWaitMicros = 250;
bool SpinEnabled();

// Number of worker threads serving ordinary calls: namespace creation and libnftables are the
// slow, parallel-friendly parts; netlink operations serialise on the kernel's rtnl lock anyway.
constexpr int kWorkerThreads = 4;

// Where a job runs. Ordinary calls share kWorkerThreads threads; work that may wait a long time
// gets threads of its own so that it never holds up the ordinary calls:
//   kNft      one thread (`nk-nft`): libnftables is used by one thread at a time anyway;
//   kLongWait threads started on demand (`nk-wait-N`, at most kLongWaitThreads) for waits that last
//             as long as the kernel (or another process) takes, e.g. namespace cleanup.
enum class Lane { kGeneral, kNft, kLongWait };
constexpr int kLongWaitThreads = 8;

void InitWorkerPool(Napi::Env env);
// The same, and exports setErrorFactory(fn): lib/errors.ts hands over how to make a NetnsError.
void InitWorkerPool(Napi::Env env, Napi::Object exports);
// Queues the job and returns the promise it will settle.
Napi::Promise Submit(Napi::Env env, std::unique_ptr<Job> job);
Napi::Promise Submit(Napi::Env env, std::unique_ptr<Job> job, Lane lane);

// A native failure as a JavaScript Error (a NetnsError when lib/ has registered its factory) with
// code, errno (negative), syscall, detail and extack. Call on the environment's own thread.
Napi::Object ErrorToJs(Napi::Env env, const OpError& e);

// Whether a Node environment is still there, shared with threads that outlive a call. Threads
// take `mu` and check `alive` before they call into the environment's thread-safe functions; the
// environment's cleanup hook clears `alive` under `mu` before those functions are torn down.
struct EnvLink {
  std::mutex mu;
  bool alive = true;
};

// Something an environment owns that must be stopped when the environment goes (a thread that
// delivers to it, ...). Destroyed in the environment's cleanup hook, after `alive` is cleared,
// newest first.
class EnvResource {
 public:
  virtual ~EnvResource() = default;
};

// The liveness handle of `env` (for threads that deliver to it later).
std::shared_ptr<EnvLink> LinkOf(Napi::Env env);
// The resource stored under `key` for `env`, or nullptr.
EnvResource* GetEnvResource(Napi::Env env, const char* key);
EnvResource* SetEnvResource(Napi::Env env, const char* key, std::unique_ptr<EnvResource> r);

}  // namespace nk

#include "worker_pool.h"

#include <pthread.h>
#include <sched.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "ns_enter.h"
#include "op_trace.h"

namespace nk {

namespace {

struct EnvState;
void Settle(Napi::Env env, Napi::Function, EnvState* state, Job* raw);
using SettleFn = Napi::TypedThreadSafeFunction<EnvState, Job, Settle>;

// Everything of the addon that belongs to one Node environment. Threads reach it only through a
// shared_ptr held by their task, and call its thread-safe function only while link->alive.
struct EnvState {
  std::shared_ptr<EnvLink> link = std::make_shared<EnvLink>();
  // Jobs of this environment executing now (under link->mu): its cleanup waits for them, so that
  // once a Worker's terminate() has resolved nothing it started is still changing the system.
  int running = 0;
  std::condition_variable idle;
  SettleFn tsfn;
  int pending = 0;  // the environment's own thread only
  Napi::FunctionReference errorFactory;
  std::vector<std::pair<std::string, std::unique_ptr<EnvResource>>> resources;
};

// What the instance data holds: the state is shared with queued tasks, which may outlive it.
struct Instance {
  std::shared_ptr<EnvState> state;
};

std::shared_ptr<EnvState>& StateOf(Napi::Env env) { return env.GetInstanceData<Instance>()->state; }

struct Task {
  Job* job;
  std::shared_ptr<EnvState> env;
};

// Hands a finished job to its environment, or drops it when the environment is gone.
void Deliver(Task t) {
  Job* job = t.job;
  {
    std::lock_guard<std::mutex> lock(t.env->link->mu);
    if (t.env->link->alive && t.env->tsfn.BlockingCall(job) == napi_ok) job = nullptr;
  }
  delete job;  // outside the lock: a job's destructor may release resources of the environment
}

// One step of polling: a pause instruction (cheap, and kind to the other hyperthread).
inline void PollStep() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

using Clock = std::chrono::steady_clock;

// The worker's side of a job whose submitting thread may be waiting for it: true when the waiting
// thread takes the result over (it settles the promise itself, nothing is delivered).
bool HandToCaller(Job* job) {
  int expected = Job::kCallerWaits;
  return job->handoff.compare_exchange_strong(expected, Job::kCallerSettles, std::memory_order_acq_rel);
}

// The submitting thread's side: polls up to `micros` for the worker to hand the job over. False
// when it gave up first (the worker then delivers through the thread-safe function as usual).
bool WaitForHandoff(Job* job, int micros) {
  const auto deadline = Clock::now() + std::chrono::microseconds(micros);
  do {
    if (job->handoff.load(std::memory_order_acquire) == Job::kCallerSettles) return true;
    PollStep();
  } while (Clock::now() < deadline);
  int expected = Job::kCallerWaits;
  if (job->handoff.compare_exchange_strong(expected, Job::kDeliver, std::memory_order_acq_rel)) return false;
  return true;  // handed over between the last look and the give-up
}

// A set of threads with one queue. Threads start on demand, up to `max`, and stay.
class ThreadLane {
 public:
  // `spin`: a thread that finished a job polls for the next one (kWorkerWaitMicros) before it sleeps.
  ThreadLane(const char* name, int max, int eager, bool spin = false) : name_(name), max_(max), spin_(spin && SpinEnabled()) {
    std::lock_guard<std::mutex> lock(mu_);
    for (int i = 0; i < eager; i++) StartLocked();
  }

  ~ThreadLane() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  void Push(Task t) {
    bool wake;
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(t));
      queued_.store(queue_.size(), std::memory_order_release);
      if (idle_ < queue_.size() && threads_.size() < static_cast<size_t>(max_)) StartLocked();
      // A polling thread takes it within microseconds; waking a sleeping one too would only cost.
      wake = spinning_ < queue_.size();
    }
    if (wake) cv_.notify_one();
  }

 private:
  void StartLocked() {
    int index = static_cast<int>(threads_.size());
    threads_.emplace_back([this, index] { Run(index); });
  }

  void Run(int index) {
    std::string name = max_ == 1 ? name_ : name_ + "-" + std::to_string(index);
    pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
    RememberHomeNamespace();
    std::unique_lock<std::mutex> lock(mu_);
    bool justWorked = false;
    for (;;) {
      idle_++;
      if (justWorked && spin_ && queue_.empty() && !stopping_) {
        spinning_++;
        lock.unlock();
        const auto deadline = Clock::now() + std::chrono::microseconds(kWorkerWaitMicros);
        while (queued_.load(std::memory_order_acquire) == 0 && Clock::now() < deadline) PollStep();
        lock.lock();
        spinning_--;
      }
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      idle_--;
      if (queue_.empty()) return;
      Task t = std::move(queue_.front());
      queue_.pop_front();
      queued_.store(queue_.size(), std::memory_order_release);
      lock.unlock();
      justWorked = true;
      bool alive;
      {
        std::lock_guard<std::mutex> envLock(t.env->link->mu);
        alive = t.env->link->alive;
        if (alive) t.env->running++;
      }
      // A job whose environment is gone is not started: nobody would learn what it did.
      if (OpTrace::On()) t.job->trace.started = OpTrace::Now();
      if (alive) {
        t.job->Execute();
        if (OpTrace::On()) t.job->trace.executed = OpTrace::Now();
        std::lock_guard<std::mutex> envLock(t.env->link->mu);
        if (--t.env->running == 0) t.env->idle.notify_all();
      }
      // The submitting thread settles it itself when it is still waiting for it.
      if (!(alive && HandToCaller(t.job))) Deliver(std::move(t));
      lock.lock();
    }
  }

  std::string name_;
  int max_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Task> queue_;
  std::atomic<size_t> queued_{0};  // queue_.size(), for polling threads that hold no lock
  size_t idle_ = 0;
  size_t spinning_ = 0;  // threads polling for the next job (under mu_)
  bool spin_;
  bool stopping_ = false;
};

// The threads, shared by every environment of the process; started with the first environment
// and stopped (joined) when the last one is cleaned up.
struct Pool {
  ThreadLane general{"nk-worker", kWorkerThreads, kWorkerThreads, true};
  ThreadLane nft{"nk-nft", 1, 0};
  ThreadLane wait{"nk-wait", kLongWaitThreads, 0};
};

std::mutex pool_mu;
Pool* pool = nullptr;
int pool_users = 0;

void Settle(Napi::Env env, Napi::Function, EnvState* state, Job* raw) {
  std::unique_ptr<Job> job(raw);
  std::unique_ptr<Napi::Promise::Deferred> deferred(job->deferred);
  if (env == nullptr) return;  // the environment is being torn down: just free the job
  bool last = --state->pending == 0;
  // Every N-API call below fails while a Worker is being terminated (it can no longer run
  // JavaScript): then there is nobody to settle for, and nothing may escape this callback.
  try {
    Napi::HandleScope scope(env);
    if (job->error.failed()) {
      deferred->Reject(ErrorToJs(env, job->error));
    } else {
      try {
        deferred->Resolve(job->Result(env));
      } catch (const Napi::Error& e) {
        deferred->Reject(e.Value());
      }
    }
  } catch (const Napi::Error&) {
  }
  if (last) napi_unref_threadsafe_function(env, state->tsfn);
  if (OpTrace::On()) job->trace.Print();
}

void Cleanup(EnvState* state) {
  {
    std::unique_lock<std::mutex> lock(state->link->mu);
    state->link->alive = false;
    // Queued jobs will not start; running ones finish first (their results are dropped).
    state->idle.wait(lock, [state] { return state->running == 0; });
  }
  // Threads that deliver to this environment stop before its thread-safe functions go.
  while (!state->resources.empty()) state->resources.pop_back();
  state->tsfn.Release();
  state->errorFactory.Reset();
  Pool* last = nullptr;
  {
    std::lock_guard<std::mutex> lock(pool_mu);
    if (--pool_users == 0) last = std::exchange(pool, nullptr);
  }
  delete last;  // joins the threads; every job still running belongs to a gone environment
}

Napi::Value SetErrorFactory(const Napi::CallbackInfo& info) {
  StateOf(info.Env())->errorFactory = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

}  // namespace

bool SpinEnabled() {
  static const bool on = [] {
    const char* v = getenv("NETNS_KIT_SPIN");
    return v == nullptr || strcmp(v, "0") != 0;
  }();
  return on;
}

Napi::Object ErrorToJs(Napi::Env env, const OpError& e) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("errno", -e.err);
  o.Set("syscall", e.op);
  o.Set("message", std::string(strerror(e.err)));
  if (!e.extack.empty()) o.Set("extack", e.extack);
  if (!e.detail.empty()) o.Set("detail", e.detail);
  // lib/errors.ts registers the factory that makes a NetnsError of these fields.
  auto* inst = env.GetInstanceData<Instance>();
  if (inst != nullptr && !inst->state->errorFactory.IsEmpty()) {
    try {
      Napi::Value made = inst->state->errorFactory.Call({o});
      if (made.IsObject()) return made.As<Napi::Object>();
    } catch (const Napi::Error&) {
      // fall through to a plain Error
    }
  }
  const char* name = strerrorname_np(e.err);
  std::string message = std::string(name ? name : "EIO") + ": " + strerror(e.err) + ", " + e.op;
  if (!e.detail.empty()) message += " " + e.detail;
  if (!e.extack.empty()) message += ": " + e.extack;
  Napi::Object err = Napi::Error::New(env, message).Value();
  err.Set("code", name ? name : "EIO");
  for (const char* key : {"errno", "syscall", "extack", "detail"}) {
    if (o.Has(key)) err.Set(key, o.Get(key));
  }
  return err;
}

void InitWorkerPool(Napi::Env env) {
  if (env.GetInstanceData<Instance>() != nullptr) return;
  auto state = std::make_shared<EnvState>();
  state->tsfn = SettleFn::New(env, "netns-kit", 0, 1, state.get());
  state->tsfn.Unref(env);  // an idle addon must not keep the process alive
  env.SetInstanceData(new Instance{state});
  {
    std::lock_guard<std::mutex> lock(pool_mu);
    if (pool_users++ == 0) pool = new Pool();
  }
  // Added after the thread-safe function, so it runs before the function's own cleanup.
  env.AddCleanupHook([state] { Cleanup(state.get()); });
}

void InitWorkerPool(Napi::Env env, Napi::Object exports) {
  InitWorkerPool(env);
  exports.Set("setErrorFactory", Napi::Function::New(env, SetErrorFactory));
}

Napi::Promise Submit(Napi::Env env, std::unique_ptr<Job> job) { return Submit(env, std::move(job), Lane::kGeneral); }

Napi::Promise Submit(Napi::Env env, std::unique_ptr<Job> job, Lane lane) {
  std::shared_ptr<EnvState> state = StateOf(env);
  auto* deferred = new Napi::Promise::Deferred(env);
  Napi::Promise promise = deferred->Promise();
  job->deferred = deferred;
  if (OpTrace::On()) job->trace.submitted = OpTrace::Now();
  // The environment's only job in flight (an `await` loop): wait for a quick one right here. With
  // others in flight the event loop has their results to handle, and is not held up.
  const int wait = lane == Lane::kGeneral && state->pending == 0 && SpinEnabled() ? job->CallerWaitMicros() : 0;
  if (wait > 0) job->handoff.store(Job::kCallerWaits, std::memory_order_relaxed);
  if (state->pending++ == 0) napi_ref_threadsafe_function(env, state->tsfn);
  Job* raw = job.release();
  EnvState* st = state.get();
  Task t{raw, std::move(state)};
  // pool is stable here: this environment counts among its users until its cleanup.
  switch (lane) {
    case Lane::kNft: pool->nft.Push(std::move(t)); break;
    case Lane::kLongWait: pool->wait.Push(std::move(t)); break;
    default: pool->general.Push(std::move(t));
  }
  // Handed over: the job is ours again (the worker let go of it), settled as the thread-safe
  // function would; its continuation runs as a microtask, with no trip through the event loop.
  if (wait > 0 && WaitForHandoff(raw, wait)) Settle(env, Napi::Function(), st, raw);
  return promise;
}

std::shared_ptr<EnvLink> LinkOf(Napi::Env env) { return StateOf(env)->link; }

EnvResource* GetEnvResource(Napi::Env env, const char* key) {
  for (auto& r : StateOf(env)->resources)
    if (r.first == key) return r.second.get();
  return nullptr;
}

EnvResource* SetEnvResource(Napi::Env env, const char* key, std::unique_ptr<EnvResource> r) {
  auto& list = StateOf(env)->resources;
  list.emplace_back(key, std::move(r));
  return list.back().second.get();
}

}  // namespace nk

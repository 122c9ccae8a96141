#include "worker_pool.h"

#include <pthread.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ns_enter.h"

namespace nk {

namespace {

void Settle(Napi::Env env, Napi::Function, void*, Job* raw);

class WorkerPool {
 public:
  explicit WorkerPool(Napi::Env env) {
    tsfn_ = Napi::TypedThreadSafeFunction<void, Job, Settle>::New(env, "netns-kit", 0, 1);
    tsfn_.Unref(env);  // an idle addon must not keep the process alive
    for (int i = 0; i < kWorkerThreads; i++) {
      threads_.emplace_back([this, i] { Run(i); });
    }
  }

  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
    tsfn_.Release();
  }

  Napi::Promise Submit(Napi::Env env, std::unique_ptr<Job> job) {
    auto* deferred = new Napi::Promise::Deferred(env);
    Napi::Promise promise = deferred->Promise();
    job->deferred = deferred;
    if (OpTrace::On()) job->trace.submitted = OpTrace::Now();
    if (pending_++ == 0) tsfn_.Ref(env);
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(job.release());
    }
    cv_.notify_one();
    return promise;
  }

  void Done(Napi::Env env) {
    if (--pending_ == 0) tsfn_.Unref(env);
  }

 private:
  void Run(int index) {
    std::string name = "nk-worker-" + std::to_string(index);
    pthread_setname_np(pthread_self(), name.c_str());
    RememberHomeNamespace();
    for (;;) {
      Job* job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        job = queue_.front();
        queue_.pop_front();
      }
      if (OpTrace::On()) job->trace.started = OpTrace::Now();
      job->Execute();
      if (OpTrace::On()) job->trace.executed = OpTrace::Now();
      if (tsfn_.BlockingCall(job) != napi_ok) delete job;  // the environment is going away
    }
  }

  Napi::TypedThreadSafeFunction<void, Job, Settle> tsfn_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job*> queue_;
  bool stopping_ = false;
  int pending_ = 0;  // main thread only
};

WorkerPool* pool = nullptr;

void Settle(Napi::Env env, Napi::Function, void*, Job* raw) {
  std::unique_ptr<Job> job(raw);
  std::unique_ptr<Napi::Promise::Deferred> deferred(job->deferred);
  if (env == nullptr) return;
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
  pool->Done(env);
  if (OpTrace::On()) job->trace.Print();
}

}  // namespace

Napi::Object ErrorToJs(Napi::Env env, const OpError& e) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("errno", -e.err);
  o.Set("syscall", e.op);
  o.Set("message", std::string(strerror(e.err)));
  if (!e.extack.empty()) o.Set("extack", e.extack);
  if (!e.detail.empty()) o.Set("detail", e.detail);
  return o;
}

void InitWorkerPool(Napi::Env env) {
  if (pool != nullptr) return;
  pool = new WorkerPool(env);
  env.AddCleanupHook([] {
    delete pool;
    pool = nullptr;
  });
}

Napi::Promise Submit(Napi::Env env, std::unique_ptr<Job> job) {
  return pool->Submit(env, std::move(job));
}

}  // namespace nk

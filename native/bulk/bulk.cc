// The bulk jobs lib/native.ts calls (bulkCreateChunk, bulkDeleteGroup, ...); see chunk.h for the
// phases and where each lives.
#include <dirent.h>
#include <sys/resource.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "../addon.h"
#include "../netns.h"
#include "chunk.h"

namespace nk {

namespace bulk {
namespace {

// NK_BULK_TRACE=1 prints where a chunk's time goes (stderr), for the benchmark's investigations.
class Trace {
 public:
  explicit Trace(const char* what) : what_(what), on_(getenv("NK_BULK_TRACE") != nullptr), t0_(Now()), last_(t0_) {}
  void Mark(const char* phase) {
    if (!on_) return;
    double t = Now();
    line_ += std::string(" ") + phase + "=" + std::to_string(static_cast<int>((t - last_) * 1000)) + "us";
    last_ = t;
  }
  ~Trace() {
    if (on_) fprintf(stderr, "nk-bulk %s total=%dus%s\n", what_, static_cast<int>((Now() - t0_) * 1000), line_.c_str());
  }

 private:
  static double Now() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
  }
  const char* what_;
  bool on_;
  double t0_, last_;
  std::string line_;
};

class CreateChunkJob : public Job {
 public:
  CreateChunkJob(std::string runDir, std::string hostPath, std::vector<Item> items)
      : runDir_(std::move(runDir)), hostPath_(std::move(hostPath)) {
    chunk_.items = std::move(items);
    chunk_.socks.resize(chunk_.items.size());
    chunk_.nsfds.resize(chunk_.items.size());
  }

  void Execute() override {
    Trace trace("chunk");
    if (!EnsureSharedRunDir(runDir_, &chunk_.err)) return;
    if (!CreateNamespaces(chunk_)) return;
    trace.Mark("namespaces");
    if (!WireVeths(chunk_, hostPath_)) return;
    for (auto& f : chunk_.nsfds) f.reset();
    trace.Mark("veths");
    if (!ConfigureInside(chunk_)) return;
    trace.Mark("inside");
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    Napi::Array created = Napi::Array::New(env, chunk_.created.size());
    for (size_t i = 0; i < chunk_.created.size(); i++) created.Set(i, chunk_.created[i]);
    o.Set("created", created);
    // Reported in the result, not as a rejection: the caller needs `created` too.
    if (chunk_.err.failed()) {
      Napi::Object e = ErrorToJs(env, chunk_.err);
      int at = chunk_.failedAt;
      if (at >= 0 && static_cast<size_t>(at) < chunk_.items.size()) e.Set("netns", chunk_.items[at].name);
      o.Set("error", e);
    }
    return o;
  }

 private:
  std::string runDir_, hostPath_;
  Chunk chunk_;
};

Napi::Value CreateChunk(const Napi::CallbackInfo& info) {
  std::vector<Item> items;
  Napi::Array list = info[2].As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); i++) items.push_back(ReadItem(list.Get(i).As<Napi::Object>()));
  return Submit(info.Env(), std::make_unique<CreateChunkJob>(info[0].As<Napi::String>(), info[1].As<Napi::String>(),
                                                             std::move(items)));
}

// RLIMIT_NOFILE and the number of descriptors open now, so lib/bulk.ts sizes its chunks to fit.
Napi::Value FdBudget(const Napi::CallbackInfo& info) {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  int open = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') open++;
    }
    closedir(d);
    open--;  // the directory stream itself
  }
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("limit", rl.rlim_cur == RLIM_INFINITY ? 1048576.0 : static_cast<double>(rl.rlim_cur));
  o.Set("open", open);
  return o;
}

}  // namespace
}  // namespace bulk

void InitBulk(Napi::Env env, Napi::Object exports) {
  exports.Set("bulkCreateChunk", Napi::Function::New(env, bulk::CreateChunk));
  exports.Set("bulkFdBudget", Napi::Function::New(env, bulk::FdBudget));
  bulk::InitTeardown(env, exports);
  bulk::InitCleanupWatch(env, exports);
}

}  // namespace nk

// Waiting until the kernel has finished tearing namespaces down (deleteMany({ wait: true })).
#include <fcntl.h>
#include <linux/net_namespace.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "../addon.h"
#include "../js_value.h"
#include "../ns_enter.h"
#include "../rtnl/batch.h"
#include "../rtnl/dump.h"
#include "../rtnl/extack.h"
#include "chunk.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

namespace nk {
namespace bulk {

namespace {

// Watching namespaces until the kernel has finished with them.
//
// A network namespace that lost its last reference is queued for cleanup_net(), a single work item
// on the ordered "netns" workqueue. cleanup_net() first unhashes the dying namespaces' ids from every
// other namespace (sending RTM_DELNSID there), then runs every pernet exit (devices unregistered,
// routes, sockets, conntrack...), rcu_barrier(), and frees them. So:
//   1. a private observer namespace (created here, not the machine's: nsids are state) gives each
//      watched namespace an id (RTM_NEWNSID with NETNSA_FD) and listens on RTNLGRP_NSID;
//   2. after the release, every watched id must have gone (RTM_DELNSID; checked against a
//      RTM_GETNSID dump, so a lost notification cannot hang us): their cleanup_net() has *started*;
//   3. then a sentinel namespace is given an id and dropped; its RTM_DELNSID comes from a later run
//      of the same work item, which cannot start before the run that handled ours has returned, i.e.
//      after our namespaces were completely torn down and freed.
// The observer and the sentinel are empty namespaces; their own (cheap) cleanup is not awaited.
struct Watch {
  Fd notify, ctl;  // both opened inside the observer: the only references that keep it alive
  std::map<int32_t, std::string> pending;  // nsid -> path
  int32_t nextId = 0;
};

std::mutex watch_mu;
std::map<uint32_t, std::unique_ptr<Watch>> watches;
uint32_t next_watch = 1;

bool AssignIds(Watch& w, std::vector<std::pair<Fd, std::string>>& fds, OpError* err) {
  Batch b;
  std::vector<int32_t> ids;
  for (auto& f : fds) {
    NlMsg msg(nlmsg_alloc_simple(RTM_NEWNSID, NLM_F_CREATE | NLM_F_EXCL));
    rtgenmsg g{AF_UNSPEC};
    int32_t id = w.nextId++;
    if (!msg || nlmsg_append(msg.get(), &g, sizeof(g), NLMSG_ALIGNTO) < 0 ||
        nla_put_u32(msg.get(), NETNSA_FD, static_cast<uint32_t>(f.first.get())) < 0 || nla_put_s32(msg.get(), NETNSA_NSID, id) < 0) {
      err->Set(ENOMEM, "watch netns");
      return false;
    }
    ids.push_back(id);
    b.Add(std::move(msg), "watch netns", f.second, static_cast<int>(ids.size() - 1));
  }
  int failed = -1;
  if (!b.empty() && !b.Run(w.ctl.get(), err, &failed)) return false;
  for (size_t i = 0; i < fds.size(); i++) w.pending[ids[i]] = fds[i].second;
  fds.clear();
  return true;
}

// Ids present in the observer (RTM_GETNSID dump), retried like every dump when the kernel marks it
// interrupted.
bool DumpIds(int fd, std::set<int32_t>* out, OpError* err) {
  alignas(nlmsghdr) static thread_local char rb[65536];
  return DumpWithRetry("list nsids", err, [out] { out->clear(); }, [&] {
    struct {
      nlmsghdr h;
      rtgenmsg g;
    } req{};
    req.h.nlmsg_len = NLMSG_LENGTH(sizeof(rtgenmsg));
    req.h.nlmsg_type = RTM_GETNSID;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.h.nlmsg_seq = NextSeq();
    req.g.rtgen_family = AF_UNSPEC;
    if (send(fd, &req, req.h.nlmsg_len, 0) < 0) {
      err->Set(errno, "list nsids");
      return DumpResult::kFailed;
    }
    bool interrupted = false;
    for (;;) {
      ssize_t n = recv(fd, rb, sizeof(rb), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        err->Set(errno, "list nsids");
        return DumpResult::kFailed;
      }
      int len = static_cast<int>(n);
      for (auto* h = reinterpret_cast<nlmsghdr*>(rb); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
        if (h->nlmsg_seq != req.h.nlmsg_seq) continue;
        if (h->nlmsg_flags & NLM_F_DUMP_INTR) interrupted = true;
        if (h->nlmsg_type == NLMSG_DONE) return interrupted ? DumpResult::kInterrupted : DumpResult::kDone;
        if (h->nlmsg_type == NLMSG_ERROR) {
          auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(h));
          if (e->error == 0) return interrupted ? DumpResult::kInterrupted : DumpResult::kDone;
          if (e->error == -EINTR) return DumpResult::kInterrupted;
          err->Set(-e->error, "list nsids");
          err->extack = ExtackOf(h);
          return DumpResult::kFailed;
        }
        if (h->nlmsg_type != RTM_NEWNSID) continue;
        nlattr* tb[NETNSA_MAX + 1];
        if (nlmsg_parse(h, sizeof(rtgenmsg), tb, NETNSA_MAX, nullptr) == 0 && tb[NETNSA_NSID]) {
          out->insert(static_cast<int32_t>(nla_get_u32(tb[NETNSA_NSID])));
        }
      }
    }
  });
}

// Waits until none of w.pending is left, or the deadline. Notifications wake us; the dump decides.
bool AwaitGone(Watch& w, std::chrono::steady_clock::time_point deadline, OpError* err) {
  alignas(nlmsghdr) char rb[16384];
  bool check = true;
  for (;;) {
    if (check) {
      std::set<int32_t> present;
      if (!DumpIds(w.ctl.get(), &present, err)) return false;
      for (auto it = w.pending.begin(); it != w.pending.end();) {
        if (present.count(it->first)) ++it;
        else it = w.pending.erase(it);
      }
      if (w.pending.empty()) return true;
      check = false;
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      std::string names;
      int shown = 0;
      for (auto& kv : w.pending) {
        if (shown++ == 3) { names += " ..."; break; }
        names += (names.empty() ? "" : ", ") + kv.second;
      }
      err->Set(ETIMEDOUT, "wait for netns cleanup",
               std::to_string(w.pending.size()) + " namespace(s) still alive (a process or open file holds them?): " + names);
      return false;
    }
    int ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count());
    pollfd p{w.notify.get(), POLLIN, 0};
    int rc = poll(&p, 1, std::min(ms, 200) + 1);
    if (rc <= 0) {
      check = true;  // quiet for a while: look again anyway
      continue;
    }
    // Drain; any RTM_DELNSID of ours (or a lost notification, ENOBUFS) calls for a dump.
    for (;;) {
      ssize_t n = recv(w.notify.get(), rb, sizeof(rb), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == ENOBUFS) {
          check = true;
          continue;
        }
        break;  // EAGAIN: drained
      }
      int len = static_cast<int>(n);
      for (auto* h = reinterpret_cast<nlmsghdr*>(rb); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
        if (h->nlmsg_type != RTM_DELNSID) continue;
        nlattr* tb[NETNSA_MAX + 1];
        if (nlmsg_parse(h, sizeof(rtgenmsg), tb, NETNSA_MAX, nullptr) == 0 && tb[NETNSA_NSID]) {
          w.pending.erase(static_cast<int32_t>(nla_get_u32(tb[NETNSA_NSID])));
          if (w.pending.empty()) check = true;
        }
      }
    }
  }
}

class WatchBeginJob : public Job {
 public:
  explicit WatchBeginJob(std::vector<std::string> paths) : paths_(std::move(paths)) {}

  void Execute() override {
    auto w = std::make_unique<Watch>();
    {
      ScopedUnshare observer;
      if (!observer.Enter(&error, "watch netns", "unshare observer")) return;
      w->notify = OpenRtnl(&error, "observer");
      if (w->notify.valid()) w->ctl = OpenRtnl(&error, "observer");
    }
    if (error.failed()) return;
    int grp = RTNLGRP_NSID;
    setsockopt(w->notify.get(), SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &grp, sizeof(grp));
    int big = 8 << 20;
    if (setsockopt(w->notify.get(), SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)) != 0)
      setsockopt(w->notify.get(), SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    // A few fds at a time: this must work under a low RLIMIT_NOFILE too.
    std::vector<std::pair<Fd, std::string>> fds;
    for (auto& p : paths_) {
      OpError local;
      Fd fd = OpenNetns(p, &local);
      if (!fd.valid()) {
        missing_.push_back(p);
        continue;
      }
      fds.emplace_back(std::move(fd), p);
      if (fds.size() == 32 && !AssignIds(*w, fds, &error)) return;
    }
    if (!AssignIds(*w, fds, &error)) return;
    std::lock_guard<std::mutex> lock(watch_mu);
    handle_ = next_watch++;
    watches[handle_] = std::move(w);
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("handle", handle_);
    Napi::Array m = Napi::Array::New(env, missing_.size());
    for (size_t i = 0; i < missing_.size(); i++) m.Set(i, missing_[i]);
    o.Set("missing", m);
    return o;
  }

 private:
  std::vector<std::string> paths_, missing_;
  uint32_t handle_ = 0;
};

std::unique_ptr<Watch> TakeWatch(uint32_t handle) {
  std::lock_guard<std::mutex> lock(watch_mu);
  auto it = watches.find(handle);
  if (it == watches.end()) return nullptr;
  auto w = std::move(it->second);
  watches.erase(it);
  return w;
}

class WatchWaitJob : public Job {
 public:
  WatchWaitJob(uint32_t handle, int64_t timeoutMs) : handle_(handle), timeoutMs_(timeoutMs) {}

  void Execute() override {
    std::unique_ptr<Watch> w = TakeWatch(handle_);
    if (!w) {
      error.Set(EINVAL, "wait for netns cleanup", "unknown watch");
      return;
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs_);
    if (!AwaitGone(*w, deadline, &error)) return;
    // The sentinel: created, given an id, dropped. See the comment on Watch.
    std::vector<std::pair<Fd, std::string>> fds;
    {
      ScopedUnshare sentinel;
      if (!sentinel.Enter(&error, "wait for netns cleanup", "unshare sentinel")) return;
      fds.emplace_back(Fd(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)), "sentinel");
    }
    if (!fds[0].first.valid()) {
      error.Set(errno, "wait for netns cleanup", "open sentinel");
      return;
    }
    if (!AssignIds(*w, fds, &error)) return;  // closes the last handle: the sentinel dies
    AwaitGone(*w, deadline, &error);
  }

 private:
  uint32_t handle_;
  int64_t timeoutMs_;
};

Napi::Value WatchBegin(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<WatchBeginJob>(Strings(info[0])));
}

Napi::Value WatchWait(const Napi::CallbackInfo& info) {
  // Lasts as long as the kernel's cleanup: on a thread of its own, not one of ordinary calls'.
  return Submit(info.Env(), std::make_unique<WatchWaitJob>(info[0].As<Napi::Number>().Uint32Value(),
                                                           info[1].As<Napi::Number>().Int64Value()), Lane::kLongWait);
}

Napi::Value WatchClose(const Napi::CallbackInfo& info) {
  TakeWatch(info[0].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

}  // namespace

void InitCleanupWatch(Napi::Env env, Napi::Object exports) {
  exports.Set("bulkWatchBegin", Napi::Function::New(env, WatchBegin));
  exports.Set("bulkWatchWait", Napi::Function::New(env, WatchWait));
  exports.Set("bulkWatchClose", Napi::Function::New(env, WatchClose));
}

}  // namespace bulk
}  // namespace nk

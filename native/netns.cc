// Named network namespaces, persisted exactly like `ip netns add`: an empty file under the run
// directory (normally /run/netns) with the namespace bind-mounted onto it, the directory made a
// shared mount (under flock) so that mounts and unmounts propagate to later mount namespaces.
// Reference: iproute2 ip/ipnetns.c, netns_add() and netns_delete().
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/if.h>
#include <linux/net_namespace.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/route/link.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "addon.h"
#include "rtnl/holders.h"
#include "nl_socket.h"
#include "netns.h"
#include "ns_enter.h"
#include "sysctl_file.h"

namespace nk {

namespace {

bool HasCapability(int cap) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &hdr, data) != 0) return false;
  return (data[cap / 32].effective & (1u << (cap % 32))) != 0;
}

}  // namespace

// Once per run directory and process is enough; the flock keeps concurrent `ip` processes and
// other netns-kit users from stacking bind mounts (which iproute2 saw lock machines up).
bool EnsureSharedRunDir(const std::string& dir, OpError* err) {
  static std::mutex mu;
  static std::vector<std::string> done;
  std::lock_guard<std::mutex> lock(mu);
  for (auto& d : done)
    if (d == dir) return true;
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    err->Set(errno, "create netns", "mkdir " + dir);
    return false;
  }
  Fd lockfd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!lockfd.valid()) {
    err->Set(errno, "create netns", "open " + dir);
    return false;
  }
  if (flock(lockfd.get(), LOCK_EX) != 0) {
    err->Set(errno, "create netns", "flock " + dir);
    return false;
  }
  bool made_mount = false;
  while (mount("", dir.c_str(), "none", MS_SHARED | MS_REC, nullptr) != 0) {
    if (errno != EINVAL || made_mount) {
      err->Set(errno, "create netns", "make " + dir + " a shared mount");
      return false;
    }
    // Not a mount point yet: make it one, then retry making it shared.
    if (mount(dir.c_str(), dir.c_str(), "none", MS_BIND | MS_REC, nullptr) != 0) {
      err->Set(errno, "create netns", "bind mount " + dir);
      return false;
    }
    made_mount = true;
  }
  done.push_back(dir);
  return true;
}

namespace {

class CreateJob : public Job {
 public:
  CreateJob(std::string dir, std::string path, std::vector<std::pair<std::string, std::string>> sysctls, bool loopbackUp)
      : dir_(std::move(dir)), path_(std::move(path)), sysctls_(std::move(sysctls)), loopbackUp_(loopbackUp) {}

  // Half a millisecond and more of kernel work (unshare, mounts), some of it deferred to kernel
  // threads: a caller polling for it would hold the event loop and take a CPU from them.
  int CallerWaitMicros() const override { return 0; }

  void Execute() override {
    if (!HasCapability(CAP_SYS_ADMIN) || !HasCapability(CAP_NET_ADMIN)) {
      error.Set(EPERM, "create netns", "needs CAP_SYS_ADMIN and CAP_NET_ADMIN");
      return;
    }
    if (!EnsureSharedRunDir(dir_, &error)) return;
    Fd file(open(path_.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0));
    if (!file.valid()) {
      error.Set(errno, "create netns", path_);
      return;
    }
    file.reset();
    OpError sockErr;
    bool cached = false;
    {
      ScopedUnshare fresh;
      if (!fresh.Enter(&error, "create netns", "unshare")) {
        unlink(path_.c_str());
        return;
      }
      // Still inside the new namespace: settings that must exist before anything else does
      // (e.g. IPv6 off) are written here, without a second switch.
      for (auto& kv : sysctls_) {
        if (!WriteSysctl(kv.first, kv.second, &error)) break;
      }
      if (!error.failed() && mount("/proc/thread-self/ns/net", path_.c_str(), "none", MS_BIND, nullptr) != 0) {
        error.Set(errno, "create netns", "bind mount " + path_);
      }
      // The identity the new Netns handle is bound to (ESTALE once the name holds another).
      struct stat st {};
      if (!error.failed() && stat("/proc/thread-self/ns/net", &st) == 0) id_ = NsId{st.st_dev, st.st_ino};
      // The namespace's netlink socket is opened now, from inside (the first operation there then
      // needs no switch, as the C peer and the bulk path do). Only needed for `lo` up: otherwise a
      // failure here (EMFILE, ...) just leaves the socket to be opened on first use.
      cached = !error.failed() && CacheSocketHere(path_, &sockErr);
    }
    if (!error.failed()) {
      if (loopbackUp_) {
        if (!cached) error = sockErr;
        else BringLoopbackUp();
      }
      if (error.failed()) {
        ReleaseSockets(path_);
        umount2(path_.c_str(), MNT_DETACH);
      }
    }
    if (error.failed()) unlink(path_.c_str());  // the namespace dies with the last reference
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("dev", static_cast<double>(id_.dev));
    o.Set("ino", static_cast<double>(id_.ino));
    return o;
  }

 private:
  NsId id_;
  // `ip link set lo up`: lo is ifindex 1 in every new namespace (LOOPBACK_IFINDEX).
  void BringLoopbackUp() {
    SocketLease lease(path_, &error);
    if (!lease.ok()) return;
    NlPtr<rtnl_link> change(rtnl_link_alloc());
    rtnl_link_set_ifindex(change.get(), 1);
    rtnl_link_set_flags(change.get(), IFF_UP);
    nl_msg* msg = nullptr;
    if (rtnl_link_build_add_request(change.get(), 0, &msg) < 0) {
      error.Set(ENOMEM, "set link", "lo");
      return;
    }
    lease.Transact(msg, "set link up", "lo", &error);
  }

  std::string dir_, path_;
  std::vector<std::pair<std::string, std::string>> sysctls_;
  bool loopbackUp_;
};

class DeleteJob : public Job {
 public:
  explicit DeleteJob(const std::string& ref) : ref_(ParseNsRef(ref)), path_(ref_.path) {}
  void Execute() override {
    if (ref_.pinned) {
      // A handle bound to its namespace never deletes another one that now has its name.
      NsId now;
      OpError missing;
      if (NsIdOfPath(path_, &now, &missing) && !CheckPinned(ref_, now, &error)) return;
    }
    // Our own cached socket would keep the namespace alive after its name is gone.
    ReleaseSockets(path_);
    if (umount2(path_.c_str(), MNT_DETACH) != 0 && errno != EINVAL) {
      // EINVAL: not a mount point (a stale entry); the unlink below still removes it.
      error.Set(errno, "delete netns", "umount " + path_);
      return;
    }
    if (unlink(path_.c_str()) != 0) error.Set(errno, "delete netns", path_);
  }

 private:
  NsRef ref_;
  std::string path_;
};

// RTM_GETNSID: the id that namespace `path` uses for each of `others` (-1 when none is assigned).
class NsidJob : public Job {
 public:
  NsidJob(std::string path, std::vector<std::string> others) : path_(std::move(path)), others_(std::move(others)) {}

  void Execute() override {
    SocketLease lease(path_, &error);
    if (!lease.ok()) return;
    for (auto& other : others_) {
      OpError local;
      Fd fd = OpenNetns(other, &local);
      if (!fd.valid()) {
        ids_.push_back(-1);
        continue;
      }
      int32_t id = -1;
      rtgenmsg hdr{AF_UNSPEC};
      nl_msg* msg = nlmsg_alloc_simple(RTM_GETNSID, NLM_F_REQUEST);
      if (msg == nullptr || nlmsg_append(msg, &hdr, sizeof(hdr), NLMSG_ALIGNTO) < 0 ||
          nla_put_u32(msg, NETNSA_FD, static_cast<uint32_t>(fd.get())) < 0) {
        if (msg) nlmsg_free(msg);
        error.Set(ENOMEM, "get nsid", other);
        return;
      }
      bool ok = lease.Request(msg, "get nsid", other, &local, OnReply, &id);
      ids_.push_back(ok ? id : -1);
    }
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, ids_.size());
    for (size_t i = 0; i < ids_.size(); i++) out.Set(i, ids_[i]);
    return out;
  }

 private:
  static int OnReply(nl_msg* msg, void* arg) {
    nlattr* tb[NETNSA_MAX + 1];
    if (nlmsg_parse(nlmsg_hdr(msg), sizeof(rtgenmsg), tb, NETNSA_MAX, nullptr) == 0 && tb[NETNSA_NSID]) {
      *static_cast<int32_t*>(arg) = static_cast<int32_t>(nla_get_u32(tb[NETNSA_NSID]));
    }
    return NL_OK;
  }

  std::string path_;
  std::vector<std::string> others_;
  std::vector<int32_t> ids_;
};

Napi::Value Create(const Napi::CallbackInfo& info) {
  std::vector<std::pair<std::string, std::string>> sysctls;
  Napi::Array list = info[2].As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Array kv = list.Get(i).As<Napi::Array>();
    sysctls.emplace_back(kv.Get(0u).As<Napi::String>(), kv.Get(1u).As<Napi::String>());
  }
  bool loopbackUp = info.Length() > 3 && info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value();
  return Submit(info.Env(), std::make_unique<CreateJob>(info[0].As<Napi::String>(), info[1].As<Napi::String>(),
                                                        std::move(sysctls), loopbackUp));
}

Napi::Value Delete(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<DeleteJob>(info[0].As<Napi::String>()));
}

Napi::Value Nsids(const Napi::CallbackInfo& info) {
  std::vector<std::string> others;
  Napi::Array list = info[1].As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); i++) others.push_back(list.Get(i).As<Napi::String>());
  return Submit(info.Env(), std::make_unique<NsidJob>(info[0].As<Napi::String>(), std::move(others)));
}

Napi::Value Release(const Napi::CallbackInfo& info) {
  ReleaseSockets(info[0].As<Napi::String>());
  return info.Env().Undefined();
}

Napi::Value Sweep(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(SweepSockets()));
}

Napi::Value SocketCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(OpenSocketCount()));
}

Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("dumpRetries", static_cast<double>(nl_stats.dumpRetries.load()));
  o.Set("socketsOpened", static_cast<double>(nl_stats.socketsOpened.load()));
  o.Set("openSockets", static_cast<double>(OpenSocketCount()));
  return o;
}

}  // namespace

void InitNetns(Napi::Env env, Napi::Object exports) {
  exports.Set("netnsCreate", Napi::Function::New(env, Create));
  exports.Set("netnsDelete", Napi::Function::New(env, Delete));
  exports.Set("netnsIds", Napi::Function::New(env, Nsids));
  exports.Set("releaseSockets", Napi::Function::New(env, Release));
  exports.Set("openSocketCount", Napi::Function::New(env, SocketCount));
  exports.Set("sweepSockets", Napi::Function::New(env, Sweep));
  exports.Set("netlinkStats", Napi::Function::New(env, Stats));
}

}  // namespace nk

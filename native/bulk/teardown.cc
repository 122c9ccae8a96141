// Teardown of a bulk set: `ip link del group N` in the host namespace, then the bind mounts are
// released (`ip netns delete`); cleanup_watch.cc waits for the kernel to finish.
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "../addon.h"
#include "../js_value.h"
#include "../nl_socket.h"
#include "chunk.h"

namespace nk {
namespace bulk {

namespace {

// The kernel unregisters the whole group in one batch and returns only after the devices are gone
// (netdev_run_todo waits for their references).
class DeleteGroupJob : public Job {
 public:
  DeleteGroupJob(std::string hostPath, uint32_t group) : hostPath_(std::move(hostPath)), group_(group) {}
  void Execute() override {
    SocketLease host(hostPath_, &error);
    if (!host.ok()) return;
    NlMsg msg(nlmsg_alloc_simple(RTM_DELLINK, 0));
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    if (!msg || nlmsg_append(msg.get(), &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0 || nla_put_u32(msg.get(), IFLA_GROUP, group_) < 0) {
      error.Set(ENOMEM, "delete link group");
      return;
    }
    OpError local;
    if (!host.Transact(std::move(msg), "delete link group", std::to_string(group_), &local) && local.err != ENODEV) {
      error = local;  // ENODEV: the group is empty
    }
  }

 private:
  std::string hostPath_;
  uint32_t group_;
};

// Releases named namespaces: drops our cached socket (it would keep the namespace alive), unmounts
// and unlinks, like `ip netns delete`. Missing entries are skipped (deleteMany checked them).
class ReleaseJob : public Job {
 public:
  explicit ReleaseJob(std::vector<std::string> paths) : paths_(std::move(paths)) {}
  void Execute() override {
    for (auto& p : paths_) {
      ReleaseSockets(p);
      if (umount2(p.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
        error.Set(errno, "delete netns", "umount " + p);
        continue;
      }
      if (unlink(p.c_str()) != 0 && errno != ENOENT) error.Set(errno, "delete netns", p);
    }
  }

 private:
  std::vector<std::string> paths_;
};

Napi::Value DeleteGroup(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<DeleteGroupJob>(info[0].As<Napi::String>(),
                                                             info[1].As<Napi::Number>().Uint32Value()));
}

Napi::Value Release(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<ReleaseJob>(Strings(info[0])));
}

}  // namespace

void InitTeardown(Napi::Env env, Napi::Object exports) {
  exports.Set("bulkDeleteGroup", Napi::Function::New(env, DeleteGroup));
  exports.Set("bulkRelease", Napi::Function::New(env, Release));
}

}  // namespace bulk
}  // namespace nk

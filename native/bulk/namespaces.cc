// Phase A: the chunk's namespaces, each with its rtnetlink socket and a handle for IFLA_NET_NS_FD.
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>

#include "../ns_enter.h"
#include "../rtnl/batch.h"
#include "../sysctl_file.h"
#include "chunk.h"

namespace nk {
namespace bulk {

std::mutex rtnl_turn;

bool CreateNamespaces(Chunk& c) {
  OpError& err = c.err;
  // One trip away for the whole chunk: each Enter() starts a fresh namespace, and the thread comes
  // home once, when `fresh` ends.
  ScopedUnshare fresh;
  for (size_t i = 0; i < c.items.size(); i++) {
    Item& it = c.items[i];
    Fd file(open(it.path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0));
    if (!file.valid()) {
      err.Set(errno, "create netns", it.path);
      return c.Fail(i);
    }
    file.reset();
    // disable_ipv6 and friends take the RTNL with a trylock and restart the syscall while it is
    // busy: written while another of our chunks holds the RTNL (its veths, its in-namespace
    // messages, or an unshare, whose pernet set-up takes the RTNL too), they spin and steal the CPU
    // the lock holder needs. So these writes, with the unshare before them, take turns with our
    // RTNL-heavy phases; without sysctls, unshares of concurrent chunks still run in parallel.
    std::unique_lock<std::mutex> turn(rtnl_turn, std::defer_lock);
    if (!it.sysctls.empty()) turn.lock();
    if (!fresh.Enter(&err, "create netns", "unshare " + it.path)) {
      unlink(it.path.c_str());
      return c.Fail(i);
    }
    for (auto& kv : it.sysctls) {
      if (!WriteSysctl(kv.first, kv.second, &err)) break;
    }
    if (turn.owns_lock()) turn.unlock();
    if (!err.failed()) c.socks[i] = OpenRtnl(&err, it.path);
    if (!err.failed()) {
      c.nsfds[i] = Fd(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
      if (!c.nsfds[i].valid()) err.Set(errno, "create netns", "open /proc/thread-self/ns/net");
    }
    if (!err.failed() && mount("/proc/thread-self/ns/net", it.path.c_str(), "none", MS_BIND, nullptr) != 0) {
      err.Set(errno, "create netns", "bind mount " + it.path);
    }
    if (err.failed()) {
      // Not mounted: the namespace dies with our last handle on it.
      c.socks[i].reset();
      c.nsfds[i].reset();
      unlink(it.path.c_str());
      return c.Fail(i);
    }
    c.created.push_back(it.path);
  }
  return true;
}

}  // namespace bulk
}  // namespace nk

// The bulk fast path: many alike namespaces at close to the kernel's own price, and their teardown
// awaited until the kernel has really finished. lib/bulk.ts validates, splits the work into chunks,
// runs up to kWorkerThreads chunks at once, reports progress and rolls back; these files only talk
// to the kernel, through the shared netlink layer (native/rtnl/).
//
// Per chunk of K namespaces (one worker thread), one file per phase:
//   plan.cc        the chunk as lib/bulk.ts planned it (JavaScript object -> Item).
//   namespaces.cc  A. for each namespace: open /run/netns/NAME (O_EXCL), unshare(CLONE_NEWNET),
//                  write its sysctls (IPv6 off) while inside, open a raw rtnetlink socket there (it
//                  stays bound to the namespace), bind-mount it; the next unshare starts from inside
//                  the previous one (net namespaces are not nested), so the thread switches home
//                  once per chunk, not once per namespace.
//   wire.cc        B. in the host namespace: K RTM_NEWLINK veth messages in one sendmsg, each with
//                  its peer created directly in its namespace (IFLA_NET_NS_FD, its ifindex chosen)
//                  and the host end's master, IFF_UP and interface group in the creating message.
//   configure.cc   C. in each namespace, through its own socket: lo up, eth0 up, addresses, routes
//                  in one sendmsg (the peer's ifindex is known, so no lookups), then the socket is
//                  closed: nothing per namespace stays open after set-up.
//   teardown.cc    `ip link del group N` in the host namespace, and releasing the bind mounts.
//   cleanup_watch.cc  waiting until the kernel has finished tearing the namespaces down.
//   bulk.cc        the jobs lib/native.ts calls.
#pragma once
#include <napi.h>

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../fd.h"
#include "../op_error.h"
#include "../rtnl/message.h"

namespace nk {
namespace bulk {

// One namespace of a chunk.
struct Item {
  std::string path, name;
  bool hasVeth = false;
  std::string veth, peer, bridge;
  int peerIndex = 2;
  std::optional<int64_t> hostIndex;
  uint32_t group = 0;
  std::optional<int64_t> mtu;
  bool loUp = true;
  std::vector<AddrSpec> addrs;    // index filled in phase C (the peer's, or lo's)
  std::vector<RouteSpec> routes;  // index is the device's ifindex inside the namespace, as planned
  std::vector<std::pair<std::string, std::string>> sysctls;
};

Item ReadItem(const Napi::Object& o);

// A chunk on its way through the phases. The first failure is kept in `err`, with the index of the
// item it belongs to in `failedAt`; `created` lists the namespaces that exist (for the rollback).
struct Chunk {
  std::vector<Item> items;
  std::vector<Fd> socks;  // per item: its rtnetlink socket, opened inside it (phase A to C)
  std::vector<Fd> nsfds;  // per item: a handle on its namespace for IFLA_NET_NS_FD (phase A to B)
  std::vector<std::string> created;
  OpError err;
  int failedAt = -1;

  bool Fail(size_t item) {
    failedAt = static_cast<int>(item);
    return false;
  }
};

bool CreateNamespaces(Chunk& c);
bool WireVeths(Chunk& c, const std::string& hostPath);
bool ConfigureInside(Chunk& c);

// Taken by the phases of concurrent chunks that need the kernel's RTNL (see the sysctl writes in
// namespaces.cc).
extern std::mutex rtnl_turn;

void InitTeardown(Napi::Env env, Napi::Object exports);
void InitCleanupWatch(Napi::Env env, Napi::Object exports);

}  // namespace bulk
}  // namespace nk

// Phase B: the veths, from the host namespace, in one batch. Each peer is created directly in its
// namespace with its ifindex chosen; the host end gets its master, IFF_UP and interface group in
// the creating message.
#include <linux/if.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>

#include <cerrno>
#include <map>

#include "../link.h"
#include "../nl_socket.h"
#include "../rtnl/batch.h"
#include "chunk.h"

namespace nk {
namespace bulk {

namespace {

NlMsg VethRequest(const Item& it, int master, int peerNsFd, OpError* err) {
  NlPtr<rtnl_link> link(rtnl_link_veth_alloc());
  rtnl_link_set_name(link.get(), it.veth.c_str());
  if (master) rtnl_link_set_master(link.get(), master);
  if (it.group) rtnl_link_set_group(link.get(), it.group);
  if (it.hostIndex) rtnl_link_set_ifindex(link.get(), static_cast<int>(*it.hostIndex));
  if (it.mtu) rtnl_link_set_mtu(link.get(), static_cast<unsigned>(*it.mtu));
  rtnl_link_set_flags(link.get(), IFF_UP);
  rtnl_link* peer = rtnl_link_veth_get_peer(link.get());
  NlPtr<rtnl_link> peerHold(peer);
  rtnl_link_set_name(peer, it.peer.c_str());
  rtnl_link_set_ifindex(peer, it.peerIndex);
  if (it.mtu) rtnl_link_set_mtu(peer, static_cast<unsigned>(*it.mtu));
  // Not IFF_UP on the peer here: kernel 6.18 refuses it (ENOTCONN); phase C brings it up.
  rtnl_link_set_ns_fd(peer, peerNsFd);
  nl_msg* msg = nullptr;
  if (rtnl_link_build_add_request(link.get(), NLM_F_CREATE | NLM_F_EXCL, &msg) < 0) {
    err->Set(ENOMEM, "add link", it.veth);
    return nullptr;
  }
  return NlMsg(msg);
}

}  // namespace

bool WireVeths(Chunk& c, const std::string& hostPath) {
  bool anyVeth = false;
  for (auto& it : c.items) anyVeth = anyVeth || it.hasVeth;
  if (!anyVeth) return true;
  // The host namespace's cached socket: the bridges are looked up and the batch sent through it.
  SocketLease host(hostPath, &c.err);
  if (!host.ok()) return false;
  Batch veths;
  std::map<std::string, int> bridges;
  for (size_t i = 0; i < c.items.size(); i++) {
    Item& it = c.items[i];
    if (!it.hasVeth) continue;
    int master = 0;
    if (!it.bridge.empty()) {
      auto b = bridges.find(it.bridge);
      if (b == bridges.end()) {
        if (!LookupIfIndex(host, it.bridge, &master, &c.err)) {
          c.err.detail = "bridge " + it.bridge + " in the host namespace: " + c.err.detail;
          return c.Fail(i);
        }
        bridges[it.bridge] = master;
      } else {
        master = b->second;
      }
    }
    NlMsg msg = VethRequest(it, master, c.nsfds[i].get(), &c.err);
    if (!msg) return false;
    veths.Add(std::move(msg), "add link", it.veth + " (peer " + it.peer + " in netns " + it.name + ")", static_cast<int>(i));
  }
  int failed = -1;
  std::lock_guard<std::mutex> turn(rtnl_turn);
  if (!veths.Run(nl_socket_get_fd(host.sk()), &c.err, &failed)) {
    c.failedAt = failed;
    return false;
  }
  return true;
}

}  // namespace bulk
}  // namespace nk

// Phase C: inside each namespace, through the socket opened there in phase A: lo up, the veth peer
// up, addresses, routes; one sendmsg per namespace. The socket is closed afterwards, so nothing per
// namespace stays open after set-up.
#include "../rtnl/batch.h"
#include "chunk.h"

namespace nk {
namespace bulk {

bool ConfigureInside(Chunk& c) {
  for (size_t i = 0; i < c.items.size(); i++) {
    Item& it = c.items[i];
    Batch b;
    std::string in = " in netns " + it.name;
    const int owner = static_cast<int>(i);
    auto add = [&](NlMsg msg, const char* op, const std::string& what) {
      if (!msg) {
        c.err.detail += in;
        return c.Fail(i);
      }
      b.Add(std::move(msg), op, what + in, owner);
      return true;
    };
    if (it.loUp && !add(LinkUpRequest(1, "lo", &c.err), "set link up", "lo")) return false;
    if (it.hasVeth && !add(LinkUpRequest(it.peerIndex, it.peer, &c.err), "set link up", it.peer)) return false;
    for (auto& a : it.addrs) {
      a.index = it.hasVeth ? it.peerIndex : 1;
      NlMsg m = AddrRequest(a, true, NLM_F_CREATE | NLM_F_EXCL, "add address", &c.err);
      if (!add(std::move(m), "add address", a.address + "/" + std::to_string(a.prefixlen))) return false;
    }
    for (auto& r : it.routes) {
      std::string what = (r.dstLen == 0 ? std::string("default") : r.dst + "/" + std::to_string(r.dstLen));
      if (!r.gateway.empty()) what += " via " + r.gateway;
      if (!add(RouteRequest(r, RouteChange::kAdd, "add route", &c.err), "add route", what)) return false;
    }
    int failed = -1;
    std::lock_guard<std::mutex> turn(rtnl_turn);
    if (!b.empty() && !b.Run(c.socks[i].get(), &c.err, &failed)) return c.Fail(i);
    c.socks[i].reset();
  }
  return true;
}

}  // namespace bulk
}  // namespace nk

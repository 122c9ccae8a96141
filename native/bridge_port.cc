// Bridge-port and promiscuity settings the CNI bridge network needs (hairpinMode, promiscMode,
// portIsolation) and `links.set(port, { hairpin, isolated })`.
// The ip(8) equivalents are in lib/cni/bridge-port.ts. Built as raw rtnetlink messages because
// libnl 3.7 has no setter for IFLA_BRPORT_MODE through IFLA_INFO_SLAVE_DATA.
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/route/link.h>

#include <cerrno>
#include <optional>

#include "addon.h"
#include "js_value.h"
#include "link.h"
#include "nl_socket.h"

namespace nk {
namespace {

class PortSetJob : public Job {
 public:
  PortSetJob(std::string ns, std::string name, const Napi::Object& o) : ns_(std::move(ns)), name_(std::move(name)) {
    hairpin_ = OptBool(o, "hairpin");
    promisc_ = OptBool(o, "promisc");
    isolated_ = OptBool(o, "isolated");
  }

  void Execute() override {
    SocketLease lease(ns_, &error);
    if (!lease.ok()) return;
    int index;
    if (!LookupIfIndex(lease, name_, &index, &error)) return;
    if (promisc_ && !SetPromisc(lease, index)) return;
    if (hairpin_ || isolated_) SetPortFlags(lease, index);
  }

 private:
  // ip link set dev NAME promisc on|off
  bool SetPromisc(SocketLease& lease, int index) {
    NlMsg msg(nlmsg_alloc_simple(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK));
    if (!msg) return error.Set(ENOMEM, "set link promisc", name_), false;
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    ifi.ifi_index = index;
    ifi.ifi_flags = *promisc_ ? IFF_PROMISC : 0;
    ifi.ifi_change = IFF_PROMISC;
    if (nlmsg_append(msg.get(), &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0) return error.Set(ENOMEM, "set link promisc", name_), false;
    return lease.Transact(std::move(msg), "set link promisc", name_, &error);
  }

  // ip link set dev NAME type bridge_slave [hairpin on|off] [isolated on|off] — one message.
  // An isolated port forwards only to ports that are not isolated (and the bridge itself).
  bool SetPortFlags(SocketLease& lease, int index) {
    NlMsg msg(nlmsg_alloc_simple(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK));
    if (!msg) return error.Set(ENOMEM, "set bridge port", name_), false;
    ifinfomsg ifi{};
    ifi.ifi_family = AF_UNSPEC;
    ifi.ifi_index = index;
    nlattr* info = nullptr;
    nlattr* data = nullptr;
    if (nlmsg_append(msg.get(), &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0 || !(info = nla_nest_start(msg.get(), IFLA_LINKINFO)) ||
        nla_put_string(msg.get(), IFLA_INFO_SLAVE_KIND, "bridge") < 0 || !(data = nla_nest_start(msg.get(), IFLA_INFO_SLAVE_DATA)) ||
        (hairpin_ && nla_put_u8(msg.get(), IFLA_BRPORT_MODE, *hairpin_ ? 1 : 0) < 0) ||
        (isolated_ && nla_put_u8(msg.get(), IFLA_BRPORT_ISOLATED, *isolated_ ? 1 : 0) < 0)) {
      return error.Set(ENOMEM, "set bridge port", name_), false;
    }
    nla_nest_end(msg.get(), data);
    nla_nest_end(msg.get(), info);
    return lease.Transact(std::move(msg), "set bridge port", name_, &error);
  }

  std::string ns_, name_;
  std::optional<bool> hairpin_, promisc_, isolated_;
};

Napi::Value PortSet(const Napi::CallbackInfo& info) {
  return Submit(info.Env(), std::make_unique<PortSetJob>(info[0].As<Napi::String>(), info[1].As<Napi::String>(),
                                                         info[2].As<Napi::Object>()));
}

}  // namespace

void InitBridgePort(Napi::Env env, Napi::Object exports) {
  exports.Set("bridgePortSet", Napi::Function::New(env, PortSet));
}

}  // namespace nk

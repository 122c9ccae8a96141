// Bridge / vxlan forwarding entries (AF_BRIDGE neighbours), shared by the list call and the event
// stream (the same typed object in both). libnl 3.7 reads neither NDA_VNI nor NDA_PORT, so the
// messages are decoded here.
#pragma once
#include <linux/netlink.h>
#include <napi.h>

#include <cstdint>
#include <string>

namespace nk {

struct FdbInfo {
  int index = 0, state = 0, flags = 0, master = 0, vlan = 0, port = 0;
  uint32_t vni = 0;
  std::string mac, dst;
};

// `h` is an RTM_NEWNEIGH/RTM_DELNEIGH of family AF_BRIDGE.
FdbInfo DecodeFdb(const nlmsghdr* h);
Napi::Object FdbToJs(Napi::Env env, const FdbInfo& f);

}  // namespace nk

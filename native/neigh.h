// Neighbour facts shared by the list call and the event stream (the same typed object in both).
#pragma once
#include <napi.h>
#include <netlink/route/neighbour.h>

#include <string>

namespace nk {

struct NeighInfo {
  int index = 0, family = 0, state = 0, flags = 0;
  std::string address, mac;
};

NeighInfo ReadNeigh(rtnl_neigh* n);
Napi::Object NeighToJs(Napi::Env env, const NeighInfo& n);

}  // namespace nk

// Reading the kernel's answer to a request: its errno and its extended-ack text. libnl 3.7 has no
// extended-ack API, so the one parser of NLMSGERR attributes lives here, for the cached sockets'
// error callback (nl_socket.cc) and for batches sent on raw sockets (rtnl/batch.cc) alike.
#pragma once
#include <linux/netlink.h>

#include <string>

namespace nk {

// The NLMSGERR_ATTR_MSG text of an NLMSG_ERROR message `h`, or "" when the kernel gave none.
// Works whether or not the ack carries a copy of the request (NETLINK_CAP_ACK).
std::string ExtackOf(const nlmsghdr* h);

}  // namespace nk

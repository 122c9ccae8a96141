// Raw rtnetlink sockets and batches: many requests in as few sendmsg calls as possible, their acks
// read back afterwards. The bulk path sends whole namespaces' set-up this way; the messages come
// from the same builders the per-operation jobs use (rtnl/message.h).
#pragma once
#include <linux/netlink.h>
#include <netlink/msg.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "../fd.h"
#include "../op_error.h"
#include "holders.h"

namespace nk {

// Opens a bound rtnetlink socket in the calling thread's namespace, with extended acks and capped
// acks (no copy of the request to read back). `where` names the namespace for an error.
Fd OpenRtnl(OpError* err, const std::string& where, int extraFlags = 0);

// Sequence numbers for requests sent on raw sockets, unique in the process.
uint32_t NextSeq(uint32_t count = 1);

class Batch {
 public:
  // Takes `msg` (built by a libnl rtnl_*_build_*_request or by rtnl/message.h). `what` names the
  // object for an error message; `owner` is the caller's index of the item the message belongs
  // to. A null `msg` is a caller's bug and is ignored.
  void Add(NlMsg msg, const char* op, std::string what, int owner);
  bool empty() const { return msgs_.empty(); }
  size_t size() const { return msgs_.size(); }

  // Sends everything on `fd` and reads the answers. Only the last message of each sendmsg asks
  // for an ack: rtnetlink handles every message of a sendmsg synchronously and reports each
  // failure on its own, so one answer covers the whole batch when all went well. On the first
  // failure fills `err` (errno, extack, op, what) and `*failedOwner`; later messages are still
  // processed by the kernel and their failures are ignored (the caller rolls back the whole item).
  bool Run(int fd, OpError* err, int* failedOwner);

 private:
  struct Entry {
    size_t offset;
    const char* op;
    std::string what;
    int owner;
  };
  size_t End(size_t k) const;
  bool SendAll(int fd, size_t from, size_t to, OpError* err);
  bool ReadAcks(int fd, uint32_t base, size_t first, size_t end, OpError* err, int* failedOwner);

  std::vector<char> buf_;
  std::vector<Entry> msgs_;
};

}  // namespace nk

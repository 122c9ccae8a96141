#include "batch.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "extack.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

namespace nk {

namespace {
std::atomic<uint32_t> next_seq{1};
}  // namespace

uint32_t NextSeq(uint32_t count) { return next_seq.fetch_add(count); }

Fd OpenRtnl(OpError* err, const std::string& where, int extraFlags) {
  Fd fd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | extraFlags, NETLINK_ROUTE));
  if (!fd.valid()) {
    err->Set(errno, "open netlink socket", where);
    return fd;
  }
  int one = 1;
  setsockopt(fd.get(), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
  // Acks without a copy of the request: less to copy and to read back.
  setsockopt(fd.get(), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
  sockaddr_nl sa{};
  sa.nl_family = AF_NETLINK;
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    err->Set(errno, "open netlink socket", where);
    fd.reset();
  }
  return fd;
}

void Batch::Add(NlMsg msg, const char* op, std::string what, int owner) {
  if (!msg) return;
  nlmsghdr* h = nlmsg_hdr(msg.get());
  size_t at = buf_.size();
  buf_.resize(at + NLMSG_ALIGN(h->nlmsg_len));
  memcpy(buf_.data() + at, h, h->nlmsg_len);
  msgs_.push_back(Entry{at, op, std::move(what), owner});
}

size_t Batch::End(size_t k) const {
  auto* h = reinterpret_cast<const nlmsghdr*>(buf_.data() + msgs_[k].offset);
  return msgs_[k].offset + NLMSG_ALIGN(h->nlmsg_len);
}

bool Batch::Run(int fd, OpError* err, int* failedOwner) {
  const size_t kChunk = 48 * 1024;  // well under the default socket send buffer
  size_t i = 0;
  bool ok = true;
  while (i < msgs_.size()) {
    size_t start = msgs_[i].offset, j = i;
    while (j < msgs_.size() && (j == i || End(j) - start <= kChunk)) j++;
    uint32_t base = NextSeq(static_cast<uint32_t>(j - i));
    for (size_t k = i; k < j; k++) {
      auto* h = reinterpret_cast<nlmsghdr*>(buf_.data() + msgs_[k].offset);
      h->nlmsg_seq = base + static_cast<uint32_t>(k - i);
      h->nlmsg_pid = 0;
      h->nlmsg_flags |= NLM_F_REQUEST;
      if (k + 1 == j) h->nlmsg_flags |= NLM_F_ACK;
      else h->nlmsg_flags &= ~NLM_F_ACK;
    }
    if (!SendAll(fd, start, End(j - 1), err)) {
      *failedOwner = msgs_[i].owner;
      return false;
    }
    if (!ReadAcks(fd, base, i, j, err, failedOwner)) ok = false;
    i = j;
  }
  return ok;
}

bool Batch::SendAll(int fd, size_t from, size_t to, OpError* err) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  iovec iov{buf_.data() + from, to - from};
  msghdr mh{};
  mh.msg_name = &kernel;
  mh.msg_namelen = sizeof(kernel);
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  for (;;) {
    ssize_t n = sendmsg(fd, &mh, 0);
    if (n >= 0) return true;
    if (errno == EINTR) continue;
    err->Set(errno, "netlink sendmsg");
    return false;
  }
}

bool Batch::ReadAcks(int fd, uint32_t base, size_t first, size_t end, OpError* err, int* failedOwner) {
  uint32_t last = base + static_cast<uint32_t>(end - first - 1);
  bool ok = true;
  alignas(nlmsghdr) char rb[16384];
  for (;;) {
    ssize_t n = recv(fd, rb, sizeof(rb), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      err->Set(errno, "netlink recv");
      *failedOwner = msgs_[first].owner;
      return false;
    }
    int len = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(rb); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type != NLMSG_ERROR) continue;
      uint32_t seq = h->nlmsg_seq;
      if (seq < base || seq > last) continue;  // an answer to someone else's request
      auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(h));
      if (e->error != 0 && ok) {
        const Entry& m = msgs_[first + (seq - base)];
        OpError local;
        local.Set(-e->error, m.op, m.what);
        local.extack = ExtackOf(h);
        *err = local;
        *failedOwner = m.owner;
        ok = false;
      }
      if (seq == last) return ok;
    }
  }
}

}  // namespace nk

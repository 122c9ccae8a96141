#include "extack.h"

#include <cstring>

namespace nk {

std::string ExtackOf(const nlmsghdr* h) {
  if (!(h->nlmsg_flags & NLM_F_ACK_TLVS) || h->nlmsg_len < NLMSG_HDRLEN + sizeof(nlmsgerr)) return "";
  auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
  // The TLVs follow the nlmsgerr and, unless the ack is capped, the copy of the request after it.
  size_t off = NLMSG_HDRLEN + sizeof(nlmsgerr);
  if (!(h->nlmsg_flags & NLM_F_CAPPED)) off += e->msg.nlmsg_len - NLMSG_HDRLEN;
  off = NLMSG_ALIGN(off);
  while (off + sizeof(nlattr) <= h->nlmsg_len) {
    auto* a = reinterpret_cast<const nlattr*>(reinterpret_cast<const char*>(h) + off);
    if (a->nla_len < sizeof(nlattr) || off + a->nla_len > h->nlmsg_len) break;
    if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG) {
      const char* text = reinterpret_cast<const char*>(a) + NLA_HDRLEN;
      return std::string(text, strnlen(text, a->nla_len - NLA_HDRLEN));
    }
    off += NLA_ALIGN(a->nla_len);
  }
  return "";
}

}  // namespace nk

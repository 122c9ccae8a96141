/*
 * The benchmark's hand-written C peer: the same scenario as netns-kit's bulk path, written the way
 * a competent programmer would with libnl-route-3 and no tricks: one namespace after the other, one
 * request and one ack per operation.
 *
 *   peer-libnl setup    HOST_NS PREFIX N GATEWAY IPV6OFF(0|1)
 *   peer-libnl teardown PREFIX N
 *
 * setup, for i in 1..N: `ip netns add PREFIXi` (file, unshare, IPv6 sysctls, bind mount), a netlink
 * socket opened inside, back to HOST_NS; a veth PREFIXi/eth0 with the peer created in the namespace
 * and the host end with master br0 and up; then inside: lo up, eth0 up, address, default route.
 * Addresses: 10.10.0.0/16, namespace i gets 10.10.(i>>8).(i&255).
 * teardown: `ip netns del` for each (umount + unlink); the harness waits for the kernel.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define RUN_DIR "/run/netns"

static void die(const char *what, int err) {
  fprintf(stderr, "peer-libnl: %s: %s\n", what, err < 0 ? nl_geterror(err) : strerror(err));
  exit(1);
}

static void write_file(const char *path, const char *value) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, value, strlen(value)) < 0) die(path, errno);
  close(fd);
}

static struct nl_sock *connect_here(void) {
  struct nl_sock *sk = nl_socket_alloc();
  int rc;
  if (!sk) die("nl_socket_alloc", ENOMEM);
  if ((rc = nl_connect(sk, NETLINK_ROUTE)) < 0) die("nl_connect", rc);
  return sk;
}

static void set_up(struct nl_sock *sk, const char *name) {
  struct rtnl_link *l = rtnl_link_alloc();
  int rc;
  rtnl_link_set_name(l, name);
  rtnl_link_set_flags(l, IFF_UP);
  if ((rc = rtnl_link_add(sk, l, 0)) < 0) die("set link up", rc);
  rtnl_link_put(l);
}

static int setup(const char *host, const char *prefix, int n, const char *gateway, int ipv6off) {
  char path[256], name[64], veth[32], addr[32];
  int rc;
  mkdir(RUN_DIR, 0755);
  /* `ip netns add` makes the run directory a shared mount once. */
  if (mount("", RUN_DIR, "none", MS_SHARED | MS_REC, NULL) != 0) {
    mount(RUN_DIR, RUN_DIR, "none", MS_BIND | MS_REC, NULL);
    mount("", RUN_DIR, "none", MS_SHARED | MS_REC, NULL);
  }
  snprintf(path, sizeof(path), RUN_DIR "/%s", host);
  int hostfd = open(path, O_RDONLY | O_CLOEXEC);
  if (hostfd < 0 || setns(hostfd, CLONE_NEWNET) != 0) die(path, errno);
  struct nl_sock *hsk = connect_here();
  struct rtnl_link *br;
  if ((rc = rtnl_link_get_kernel(hsk, 0, "br0", &br)) < 0) die("get br0", rc);
  int brindex = rtnl_link_get_ifindex(br);
  rtnl_link_put(br);
  struct nl_addr *gw;
  if ((rc = nl_addr_parse(gateway, AF_INET, &gw)) < 0) die("gateway", rc);

  for (int i = 1; i <= n; i++) {
    snprintf(name, sizeof(name), "%s%d", prefix, i);
    snprintf(path, sizeof(path), RUN_DIR "/%s", name);
    snprintf(veth, sizeof(veth), "%s%d", prefix, i);
    snprintf(addr, sizeof(addr), "10.10.%d.%d/16", i >> 8, i & 255);

    /* ip netns add */
    int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (fd < 0) die(path, errno);
    close(fd);
    if (unshare(CLONE_NEWNET) != 0) die("unshare", errno);
    if (ipv6off) {
      write_file("/proc/sys/net/ipv6/conf/all/disable_ipv6", "1");
      write_file("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
    }
    struct nl_sock *nsk = connect_here();
    if (mount("/proc/self/ns/net", path, "none", MS_BIND, NULL) != 0) die("bind mount", errno);
    if (setns(hostfd, CLONE_NEWNET) != 0) die("setns host", errno);

    /* ip link add VETH master br0 up type veth peer name eth0 netns NAME */
    int nsfd = open(path, O_RDONLY | O_CLOEXEC);
    if (nsfd < 0) die(path, errno);
    struct rtnl_link *link = rtnl_link_veth_alloc();
    struct rtnl_link *peer = rtnl_link_veth_get_peer(link);
    rtnl_link_set_name(link, veth);
    rtnl_link_set_master(link, brindex);
    rtnl_link_set_flags(link, IFF_UP);
    rtnl_link_set_name(peer, "eth0");
    rtnl_link_set_ns_fd(peer, nsfd);
    if ((rc = rtnl_link_add(hsk, link, NLM_F_CREATE | NLM_F_EXCL)) < 0) die("add veth", rc);
    rtnl_link_put(peer);
    rtnl_link_put(link);
    close(nsfd);

    /* inside: ip link set lo up; ip link set eth0 up; ip addr add; ip route add default via */
    set_up(nsk, "lo");
    set_up(nsk, "eth0");
    struct rtnl_link *eth0;
    if ((rc = rtnl_link_get_kernel(nsk, 0, "eth0", &eth0)) < 0) die("get eth0", rc);
    int ifindex = rtnl_link_get_ifindex(eth0);
    rtnl_link_put(eth0);
    struct rtnl_addr *a = rtnl_addr_alloc();
    struct nl_addr *local;
    if ((rc = nl_addr_parse(addr, AF_INET, &local)) < 0) die("address", rc);
    rtnl_addr_set_ifindex(a, ifindex);
    rtnl_addr_set_local(a, local);
    if ((rc = rtnl_addr_add(nsk, a, 0)) < 0) die("add address", rc);
    nl_addr_put(local);
    rtnl_addr_put(a);
    struct rtnl_route *r = rtnl_route_alloc();
    struct nl_addr *dst;
    nl_addr_parse("0.0.0.0/0", AF_INET, &dst);
    rtnl_route_set_dst(r, dst);
    rtnl_route_set_family(r, AF_INET);
    rtnl_route_set_table(r, RT_TABLE_MAIN);
    rtnl_route_set_scope(r, RT_SCOPE_UNIVERSE);
    rtnl_route_set_protocol(r, RTPROT_BOOT);
    struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
    rtnl_route_nh_set_gateway(nh, gw);
    rtnl_route_add_nexthop(r, nh);
    if ((rc = rtnl_route_add(nsk, r, NLM_F_CREATE | NLM_F_EXCL)) < 0) die("add route", rc);
    nl_addr_put(dst);
    rtnl_route_put(r);
    nl_socket_free(nsk);
  }
  nl_addr_put(gw);
  nl_socket_free(hsk);
  close(hostfd);
  return 0;
}

static int teardown(const char *prefix, int n) {
  char path[256];
  for (int i = 1; i <= n; i++) {
    snprintf(path, sizeof(path), RUN_DIR "/%s%d", prefix, i);
    umount2(path, MNT_DETACH);
    if (unlink(path) != 0) die(path, errno);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 7 && strcmp(argv[1], "setup") == 0)
    return setup(argv[2], argv[3], atoi(argv[4]), argv[5], atoi(argv[6]));
  if (argc == 4 && strcmp(argv[1], "teardown") == 0) return teardown(argv[2], atoi(argv[3]));
  fprintf(stderr, "usage: peer-libnl setup HOST PREFIX N GATEWAY IPV6OFF | teardown PREFIX N\n");
  return 2;
}

#!/usr/bin/python3
"""The benchmark's pyroute2 peers (Debian's python3-pyroute2), same scenario as the others.

  peer-pyroute2.py netns   setup    HOST PREFIX N GATEWAY IPV6OFF   # NetNS objects
  peer-pyroute2.py pushns  setup    HOST PREFIX N GATEWAY IPV6OFF   # netns.pushns() + IPRoute()
  peer-pyroute2.py any     teardown PREFIX N                        # netns.remove() each

Namespace i (1..N) gets 10.10.(i>>8).(i&255)/16 on eth0 and a default route via GATEWAY.
"""
import os
import sys

from pyroute2 import IPRoute, NetNS, netns


def disable_ipv6(name):
    # pyroute2 has no sysctl API: enter the namespace and write /proc/sys, then come back.
    netns.pushns(name)
    try:
        for key in ('all', 'default'):
            with open(f'/proc/sys/net/ipv6/conf/{key}/disable_ipv6', 'w') as f:
                f.write('1')
    finally:
        netns.popns()


def address(i):
    return f'10.10.{i >> 8}.{i & 255}'


def wire(h, ns, br, name, i, gateway):
    """The same steps in both styles: the veth from the host into the namespace, then inside."""
    h.link('add', ifname=name, kind='veth', peer={'ifname': 'eth0', 'net_ns_fd': name})
    v = h.link_lookup(ifname=name)[0]
    h.link('set', index=v, master=br, state='up')
    ns.link('set', index=ns.link_lookup(ifname='lo')[0], state='up')
    e = ns.link_lookup(ifname='eth0')[0]
    ns.link('set', index=e, state='up')
    ns.addr('add', index=e, address=address(i), prefixlen=16)
    ns.route('add', dst='0.0.0.0/0', gateway=gateway)


def setup_netns(host, prefix, n, gateway, ipv6off):
    h = NetNS(host)
    br = h.link_lookup(ifname='br0')[0]
    for i in range(1, n + 1):
        name = f'{prefix}{i}'
        ns = NetNS(name, flags=os.O_CREAT)
        if ipv6off:
            disable_ipv6(name)
        wire(h, ns, br, name, i, gateway)
        ns.close()
    h.close()


def setup_pushns(host, prefix, n, gateway, ipv6off):
    netns.pushns(host)
    h = IPRoute()
    netns.popns()
    br = h.link_lookup(ifname='br0')[0]
    for i in range(1, n + 1):
        name = f'{prefix}{i}'
        netns.create(name)
        netns.pushns(name)
        if ipv6off:
            for key in ('all', 'default'):
                with open(f'/proc/sys/net/ipv6/conf/{key}/disable_ipv6', 'w') as f:
                    f.write('1')
        ns = IPRoute()
        netns.popns()
        wire(h, ns, br, name, i, gateway)
        ns.close()
    h.close()


def teardown(prefix, n):
    for i in range(1, n + 1):
        netns.remove(f'{prefix}{i}')


def main(argv):
    style, action = argv[1], argv[2]
    if action == 'setup':
        host, prefix, n, gateway, ipv6off = argv[3], argv[4], int(argv[5]), argv[6], argv[7] == '1'
        (setup_netns if style == 'netns' else setup_pushns)(host, prefix, n, gateway, ipv6off)
    else:
        teardown(argv[3], int(argv[4]))


if __name__ == '__main__':
    main(sys.argv)

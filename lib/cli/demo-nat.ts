/**
 * The tutorial's last two rules, in the namespace playing the host: masquerade (the internet sees
 * the host's address, not 192.168.15.1) and the port forward host:8080 -> 192.168.15.1:80.
 */
import type { Demo } from './demo';
import { PLAN, type DemoStep } from './demo-plan';
import { ping, tcpAsk } from './traffic';

export function demoNatSteps(demo: Demo): DemoStep[] {
  const n = demo.names;
  return [
    {
      title: 'Use the host as NAT: masquerade 192.168.15.0/24 behind its address',
      commands: [
        `iptables -t nat -A POSTROUTING -s ${PLAN.lan} -j MASQUERADE   # the tutorial's rule; here as nftables:`,
        `ip netns exec ${n.host} nft add rule inet netns_kit postrouting ip saddr ${PLAN.lan} oifname eth0 masquerade`,
      ],
      run: async (t) => {
        const { id, warnings } = await demo.ns.host.nat.masquerade({ source: PLAN.lan, outInterface: 'eth0' });
        t.made();
        const rules = await demo.ns.host.nat.list();
        if (!rules.some((r) => r.id === id && r.kind === 'masquerade')) demo.fail(`the masquerade rule ${id} is not in table inet netns_kit`);
        const server = demo.servers[0];
        const seen = server.peers.length;
        const r = await tcpAsk(demo.ns.red, PLAN.internetServer, PLAN.servicePort, 3000);
        if (!r.ok) demo.fail(`with masquerade, red should reach ${PLAN.internetServer}:80; got ${r.text}`);
        const peer = server.peers[seen];
        if (!peer?.startsWith(`${PLAN.hostAddress}:`)) demo.fail(`the internet's server should see the host's ${PLAN.hostAddress} as source, saw ${peer ?? 'nothing'}`);
        const icmp = await ping(demo.ns.gray, PLAN.internetServer);
        if (!icmp.ok) demo.fail(`with masquerade, gray should ping ${PLAN.internetServer}: ${icmp.line}`);
        return [
          `rule ${id} in table inet netns_kit of ${n.host}`,
          `red -> ${PLAN.internetServer}:80 answered: "${r.text}"`,
          `the server in the internet saw the connection come from ${peer}: the host's address, not 192.168.15.1`,
          `gray -> ${PLAN.internetServer}: ${icmp.line}`,
          ...warnings.map((w) => `(warning: ${w})`),
        ];
      },
    },
    {
      title: `Reach a service in red from outside: host port ${PLAN.forwardPort} -> ${PLAN.lanAddress.red}:${PLAN.servicePort}`,
      commands: [
        `iptables -t nat -A PREROUTING -p tcp --dport ${PLAN.forwardPort} -j DNAT --to-destination ${PLAN.lanAddress.red}:${PLAN.servicePort}   # as nftables:`,
        `ip netns exec ${n.host} nft add rule inet netns_kit prerouting fib daddr type local tcp dport ${PLAN.forwardPort} dnat ip to ${PLAN.lanAddress.red}:${PLAN.servicePort}`,
        `(a TCP server listens on red's port ${PLAN.servicePort}; a client in the internet connects to ${PLAN.hostAddress}:${PLAN.forwardPort})`,
      ],
      run: async (t) => {
        const { id, warnings } = await demo.ns.host.nat.portForward({ protocol: 'tcp', port: PLAN.forwardPort, to: { address: PLAN.lanAddress.red, port: PLAN.servicePort } });
        t.made();
        const server = await demo.server('red', '0.0.0.0', PLAN.servicePort, 'hello from red');
        const r = await tcpAsk(demo.ns.internet, PLAN.hostAddress, PLAN.forwardPort, 3000);
        if (!r.ok || !r.text.startsWith('hello from red')) demo.fail(`the internet should get red's answer through ${PLAN.hostAddress}:${PLAN.forwardPort}; got ${r.text}`);
        const peer = server.peers[0];
        if (!peer?.startsWith(`${PLAN.gateway}:`)) demo.fail(`red's server should see the internet's ${PLAN.gateway} as source, saw ${peer ?? 'nothing'}`);
        return [
          `rule ${id} in table inet netns_kit of ${n.host}`,
          `internet -> ${PLAN.hostAddress}:${PLAN.forwardPort} answered: "${r.text}"`,
          `red's server on port ${PLAN.servicePort} saw the client as ${peer}: only the destination was rewritten`,
          ...warnings.map((w) => `(warning: ${w})`),
        ];
      },
    },
  ];
}

/**
 * What a demo run is made of, shared by the demo's steps (demo.ts) and its NAT steps (demo-nat.ts):
 * the tutorial's namespaces and addresses, and the shape of a step.
 */
/** The namespaces of one demo run: the tutorial's four, plus the two that play the world around them. */
export const ROLES = ['red', 'blue', 'orange', 'gray', 'host', 'internet'] as const;
export type Role = (typeof ROLES)[number];
export const LAN_ROLES = ['red', 'blue', 'orange', 'gray'] as const;
export type LanRole = (typeof LAN_ROLES)[number];

/** The tutorial's addresses; 10.0.2.0/24 is its "host network", 203.0.113.10 plays a server on the internet. */
export const PLAN = {
  lan: '192.168.15.0/24',
  lanAddress: { red: '192.168.15.1', blue: '192.168.15.2', orange: '192.168.15.3', gray: '192.168.15.4' } as Record<LanRole, string>,
  bridge: 'v-net-0',
  bridgeAddress: '192.168.15.5',
  hostNet: '10.0.2.0/24',
  hostAddress: '10.0.2.15',
  gateway: '10.0.2.2',
  internetServer: '203.0.113.10',
  forwardPort: 8080,
  servicePort: 80,
} as const;

export interface StepTimer {
  /** ends the "made" phase; what follows is the check */
  made(): void;
}

export interface DemoStep {
  title: string;
  /** the tutorial's commands this step does (with the real namespace names) */
  commands: string[];
  /** does the step, calls t.made(), checks; returns the check lines (each printed with a ✓) */
  run(t: StepTimer): Promise<string[]>;
  /** the step only looks (pings, ARP tables): its time is all checking */
  checkOnly?: boolean;
}

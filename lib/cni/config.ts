/**
 * The network configuration on stdin: the spec's well-known fields plus the reference `bridge`
 * plugin's keys, with the same meaning and defaults, so that changing `type` is all a user changes.
 */
import { isIP } from 'node:net';
import { CODES, CniError, decodeResult, isSupportedVersion, SUPPORTED_VERSIONS, validNetworkName, type CniResult } from './spec';

export type Protocol = 'tcp' | 'udp' | 'sctp';

/** The `portMappings` capability (runtimeConfig.portMappings), as runtimes send it. */
export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: Protocol;
  /** "" or absent: every host address */
  hostIP?: string;
}

export interface Attachment {
  containerID: string;
  ifname: string;
}

export interface IpamConf {
  type: string;
  [key: string]: unknown;
}

export interface BridgeConf {
  cniVersion: string;
  name: string;
  type: string;
  /** host bridge name; default "cni0" */
  bridge: string;
  /** give the bridge the gateway address(es) and enable forwarding */
  isGateway: boolean;
  /** also add a default route via the gateway in the container (implies isGateway) */
  isDefaultGateway: boolean;
  /** replace a different address of the same subnet on the bridge instead of failing */
  forceAddress: boolean;
  /** masquerade traffic from the container to destinations outside its subnet */
  ipMasq: boolean;
  /** MTU of the bridge and both veth ends; default: the kernel's (1500) */
  mtu?: number;
  /** hairpin mode on the host veth's bridge port (traffic may leave by the port it came in) */
  hairpinMode: boolean;
  /** put the bridge into promiscuous mode */
  promiscMode: boolean;
  /** the host veth's bridge port is isolated: containers of this bridge reach the bridge (gateway), not each other */
  portIsolation: boolean;
  /**
   * "same-bridge": traffic routed between this network's bridge and another bridge whose network
   * says the same is dropped (the reference `firewall` plugin's ingressPolicy, netavark's
   * `isolate`); "open" (default): no such rule
   */
  ingressPolicy: 'open' | 'same-bridge';
  /** container interface MAC (mac, args.cni.mac or runtimeConfig.mac) */
  mac?: string;
  /** IPv6 duplicate address detection on the container interface (off by default, as the reference) */
  enabledad: boolean;
  ipam?: IpamConf;
  dns?: Record<string, unknown>;
  portMappings: PortMapping[];
  prevResult?: CniResult;
  /** 1.1.0 GC: the attachments the runtime still uses */
  validAttachments?: Attachment[];
  /** the configuration exactly as received, for delegated plugins */
  raw: Record<string, unknown>;
}

/** Decodes stdin: code 6 for bad JSON, 1 for an unsupported cniVersion, 7/2 for bad or unsupported keys. */
export function decodeConfig(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new CniError(CODES.DECODING_FAILURE, 'error parsing network configuration', (e as Error).message);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CniError(CODES.DECODING_FAILURE, 'network configuration must be a JSON object');
  }
  return value as Record<string, unknown>;
}

/** The cniVersion of a decoded configuration, checked against what we speak (code 1). */
export function configVersion(raw: Record<string, unknown>): string {
  const v = raw.cniVersion;
  if (v === undefined || v === '') {
    throw new CniError(CODES.INVALID_NETWORK_CONFIG, 'network configuration has no cniVersion');
  }
  if (!isSupportedVersion(v)) {
    throw new CniError(CODES.INCOMPATIBLE_VERSION, 'incompatible CNI versions', `config is ${JSON.stringify(v)}, plugin supports [${SUPPORTED_VERSIONS.join(' ')}]`);
  }
  return v;
}

function bool(raw: Record<string, unknown>, key: string, dflt = false): boolean {
  const v = raw[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') throw new CniError(CODES.INVALID_NETWORK_CONFIG, `"${key}" must be a boolean, got ${JSON.stringify(v)}`);
  return v;
}

function obj(v: unknown, what: string): Record<string, unknown> | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new CniError(CODES.INVALID_NETWORK_CONFIG, `"${what}" must be an object`);
  return v as Record<string, unknown>;
}

const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/**
 * Keys of the reference bridge plugin that this kernel or this plugin cannot honour. They are
 * refused (code 2, naming key and value) only when set to something other than their default.
 */
const UNSUPPORTED: Record<string, (v: unknown) => boolean> = {
  vlan: (v) => v !== 0,
  vlanTrunk: (v) => Array.isArray(v) && v.length > 0,
  preserveDefaultVlan: (v) => v === false,
  macspoofchk: (v) => v === true,
  disableContainerInterface: (v) => v === true,
};

/** Validates the bridge network configuration (the full object from stdin). */
export function parseBridgeConf(raw: Record<string, unknown>, cniArgs: Record<string, string> = {}): BridgeConf {
  const cniVersion = configVersion(raw);
  if (!validNetworkName(raw.name)) {
    throw new CniError(CODES.INVALID_NETWORK_CONFIG, 'invalid network name', `"name" must start with an alphanumeric character followed by alphanumerics, "_", "." or "-"; got ${JSON.stringify(raw.name)}`);
  }
  if (typeof raw.type !== 'string' || !raw.type) throw new CniError(CODES.INVALID_NETWORK_CONFIG, 'network configuration has no "type"');
  for (const [key, isSet] of Object.entries(UNSUPPORTED)) {
    if (raw[key] !== undefined && raw[key] !== null && isSet(raw[key])) {
      throw new CniError(CODES.UNSUPPORTED_FIELD, `unsupported field "${key}": ${JSON.stringify(raw[key])}`, `${key} is not supported by netns-kit-cni (see docs/cni.md)`);
    }
  }
  const bridge = raw.bridge === undefined || raw.bridge === '' ? 'cni0' : raw.bridge;
  if (typeof bridge !== 'string' || Buffer.byteLength(bridge) > 15 || /[/:\s]/.test(bridge)) {
    throw new CniError(CODES.INVALID_NETWORK_CONFIG, `invalid "bridge" name ${JSON.stringify(raw.bridge)}`);
  }
  const isDefaultGateway = bool(raw, 'isDefaultGateway');
  const conf: BridgeConf = {
    cniVersion,
    name: raw.name,
    type: raw.type,
    bridge,
    isDefaultGateway,
    // The reference plugin: "isDefaultGateway" implies "isGateway".
    isGateway: bool(raw, 'isGateway') || isDefaultGateway,
    forceAddress: bool(raw, 'forceAddress'),
    ipMasq: bool(raw, 'ipMasq'),
    hairpinMode: bool(raw, 'hairpinMode'),
    promiscMode: bool(raw, 'promiscMode'),
    portIsolation: bool(raw, 'portIsolation'),
    ingressPolicy: ingressPolicy(raw.ingressPolicy),
    enabledad: bool(raw, 'enabledad'),
    portMappings: [],
    raw,
  };
  if (raw.mtu !== undefined && raw.mtu !== null && raw.mtu !== 0) {
    if (typeof raw.mtu !== 'number' || !Number.isInteger(raw.mtu) || raw.mtu < 68 || raw.mtu > 65535) {
      throw new CniError(CODES.INVALID_NETWORK_CONFIG, `invalid "mtu" ${JSON.stringify(raw.mtu)} (68-65535)`);
    }
    conf.mtu = raw.mtu;
  }
  const ipam = obj(raw.ipam, 'ipam');
  if (ipam) {
    if (typeof ipam.type !== 'string' || !ipam.type || ipam.type.includes('/')) {
      throw new CniError(CODES.INVALID_NETWORK_CONFIG, 'invalid "ipam.type"', 'ipam.type must name an IPAM plugin executable');
    }
    conf.ipam = ipam as IpamConf;
  }
  const dns = obj(raw.dns, 'dns');
  if (dns) conf.dns = dns;
  const runtimeConfig = obj(raw.runtimeConfig, 'runtimeConfig') ?? {};
  // mac, as the reference: runtimeConfig.mac wins over args.cni.mac, over CNI_ARGS MAC=, over the static key.
  const args = obj(obj(raw.args, 'args')?.cni, 'args.cni');
  const mac = runtimeConfig.mac ?? args?.mac ?? cniArgs.MAC ?? raw.mac;
  if (mac !== undefined && mac !== '') {
    if (typeof mac !== 'string' || !MAC.test(mac)) throw new CniError(CODES.INVALID_NETWORK_CONFIG, `invalid MAC address ${JSON.stringify(mac)}`);
    conf.mac = mac.toLowerCase();
  }
  if (runtimeConfig.portMappings !== undefined && runtimeConfig.portMappings !== null) {
    conf.portMappings = parsePortMappings(runtimeConfig.portMappings);
  }
  if (raw.prevResult !== undefined && raw.prevResult !== null) conf.prevResult = decodeResult(raw.prevResult, 'prevResult');
  const valid = raw['cni.dev/valid-attachments'] ?? raw['cni.dev/attachments'];
  if (valid !== undefined) conf.validAttachments = parseAttachments(valid);
  return conf;
}

/**
 * The part of a configuration an IPAM plugin reads: name, version, the `ipam` section, and
 * prevResult / valid-attachments. The main plugin's own keys are not ours to judge here (a
 * reference `bridge` with `vlan` set may delegate to netns-kit-ipam), so they are ignored.
 */
export function parseIpamConf(raw: Record<string, unknown>): BridgeConf {
  const cniVersion = configVersion(raw);
  if (!validNetworkName(raw.name)) throw new CniError(CODES.INVALID_NETWORK_CONFIG, 'invalid network name', `got ${JSON.stringify(raw.name)}`);
  const ipam = obj(raw.ipam, 'ipam');
  if (!ipam || typeof ipam.type !== 'string') throw new CniError(CODES.INVALID_NETWORK_CONFIG, 'network configuration has no "ipam" section');
  const conf: BridgeConf = {
    cniVersion,
    name: raw.name,
    type: String(raw.type ?? ''),
    bridge: '',
    isGateway: false,
    isDefaultGateway: false,
    forceAddress: false,
    ipMasq: false,
    hairpinMode: false,
    promiscMode: false,
    portIsolation: false,
    ingressPolicy: 'open',
    enabledad: false,
    portMappings: [],
    ipam: ipam as IpamConf,
    raw,
  };
  if (raw.prevResult !== undefined && raw.prevResult !== null) conf.prevResult = decodeResult(raw.prevResult, 'prevResult');
  const valid = raw['cni.dev/valid-attachments'] ?? raw['cni.dev/attachments'];
  if (valid !== undefined) conf.validAttachments = parseAttachments(valid);
  return conf;
}

function ingressPolicy(v: unknown): 'open' | 'same-bridge' {
  if (v === undefined || v === null || v === '' || v === 'open') return 'open';
  if (v === 'same-bridge') return v;
  throw new CniError(CODES.INVALID_NETWORK_CONFIG, `invalid "ingressPolicy" ${JSON.stringify(v)} ("open" or "same-bridge")`);
}

function port(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) {
    throw new CniError(CODES.INVALID_NETWORK_CONFIG, `invalid ${what} ${JSON.stringify(v)} (1-65535)`);
  }
  return v;
}

export function parsePortMappings(v: unknown): PortMapping[] {
  if (!Array.isArray(v)) throw new CniError(CODES.INVALID_NETWORK_CONFIG, 'runtimeConfig.portMappings must be an array');
  return v.map((m, i) => {
    const o = obj(m, `runtimeConfig.portMappings[${i}]`) ?? {};
    const protocol = (typeof o.protocol === 'string' && o.protocol ? o.protocol : 'tcp').toLowerCase();
    if (protocol !== 'tcp' && protocol !== 'udp' && protocol !== 'sctp') {
      throw new CniError(CODES.INVALID_NETWORK_CONFIG, `invalid protocol ${JSON.stringify(o.protocol)} in runtimeConfig.portMappings[${i}]`);
    }
    const out: PortMapping = {
      hostPort: port(o.hostPort, `hostPort in runtimeConfig.portMappings[${i}]`),
      containerPort: port(o.containerPort, `containerPort in runtimeConfig.portMappings[${i}]`),
      protocol,
    };
    if (o.hostIP !== undefined && o.hostIP !== '') {
      if (typeof o.hostIP !== 'string' || !isIP(o.hostIP)) throw new CniError(CODES.INVALID_NETWORK_CONFIG, `invalid hostIP ${JSON.stringify(o.hostIP)} in runtimeConfig.portMappings[${i}]`);
      out.hostIP = o.hostIP;
    }
    return out;
  });
}

function parseAttachments(v: unknown): Attachment[] {
  if (!Array.isArray(v)) throw new CniError(CODES.INVALID_NETWORK_CONFIG, 'cni.dev/valid-attachments must be an array');
  return v.map((a, i) => {
    const o = obj(a, `cni.dev/valid-attachments[${i}]`) ?? {};
    if (typeof o.containerID !== 'string' || typeof o.ifname !== 'string') {
      throw new CniError(CODES.INVALID_NETWORK_CONFIG, `cni.dev/valid-attachments[${i}] needs string "containerID" and "ifname"`);
    }
    return { containerID: o.containerID, ifname: o.ifname };
  });
}

// ESM consumer, module: nodenext: resolves the "import" condition, i.e. dist/lib/index.d.mts.
import kit, { netns, Netns, NetnsError, Nat, TopologyError, CniError, NetworkState, topology, type NetnsErrorCode, type CreateOptions, type Link } from 'netns-kit';

// Classes are classes: usable as types (TS2749 before) and with instanceof.
let maybe: Netns | undefined;
const made = await netns.create('consumer-red', { temporary: true } satisfies CreateOptions);
maybe = made;
expectType<Equal<typeof made.name, string>>(); // always known for a created namespace
// @ts-expect-error the assertion itself can fail: name is not string | undefined here
expectType<Equal<typeof made.name, string | undefined>>();
expectType<Equal<typeof maybe.name, string | undefined>>();
const cur = netns.current();
expectType<Equal<typeof cur.name, undefined>>();
const listed = await netns.list();
expectType<Equal<(typeof listed)[number]['name'], string>>();
const links: Link[] = await made.links.list();
void links;
const nat: Nat = made.nat;
void nat;

function describe(e: unknown): NetnsErrorCode | undefined {
  if (e instanceof TopologyError) return e.code;
  if (e instanceof NetnsError) {
    expectType<Equal<typeof e.code, NetnsErrorCode>>();
    return e.code;
  }
  if (e instanceof CniError) return undefined;
  return undefined;
}
const code: NetnsErrorCode = 'ERR_NETNS_ADDON';
const errno: NetnsErrorCode = 'EEXIST';
// @ts-expect-error not a documented code
const wrong: NetnsErrorCode = 'ENOT_A_CODE';
void [describe, code, errno, wrong, NetworkState, topology.up];

// The default export is the CommonJS module object, for `import kit from 'netns-kit'`.
expectType<Equal<typeof kit.Netns, typeof Netns>>();

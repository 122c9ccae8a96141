/**
 * The topology's view of netns-kit's NAT API (lib/nat.ts, CONTRACTS.md "NAT"): rules go into the
 * table `inet nk_TOPOLOGY` of each namespace through `ns.natTable(name)` (lib/nat.ts). Each rule carries a tag
 * derived from its content, so `up` can tell which declared rules are already there without
 * comparing rule objects field by field, and leaves them alone.
 */
import { createHash } from 'node:crypto';
import type { Nat, NatRule, NatRuleSpec as CoreNatRuleSpec } from '../nat';
import type { NatRuleSpec } from './schema';

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    return `{${Object.keys(v)
      .sort()
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** The tag a declared rule carries: "nk-" + 16 hex digits of its content's hash. */
export function ruleTag(spec: NatRuleSpec): string {
  return `nk-${createHash('sha256').update(canonicalJson(spec)).digest('hex').slice(0, 16)}`;
}

/**
 * Makes the table hold exactly the declared rules, each tagged, in one nftables transaction.
 * Equivalent to one `nft -f` batch: delete the table, add it back with these rules.
 */
export async function applyRules(api: Nat, specs: NatRuleSpec[]): Promise<string[]> {
  return (await api.apply(specs.map((spec) => ({ ...spec, tag: ruleTag(spec) })))).ids;
}

/** Puts back rules read with `list()` (rollback of a changed table), in one transaction. */
export async function restoreRules(api: Nat, rules: readonly NatRule[]): Promise<void> {
  await api.apply(rules.map(({ id: _id, ...spec }): CoreNatRuleSpec => spec));
}

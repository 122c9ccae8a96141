// CommonJS consumer (module: commonjs, classic node resolution): "types" / the "require" condition.
import { netns, Netns, NetnsError, Nat, type NetnsErrorCode } from 'netns-kit';
import kit = require('netns-kit');

async function main(): Promise<void> {
  const red: Netns<string> = await netns.create('consumer-green', { temporary: true });
  expectType<Equal<typeof red.name, string>>();
  // @ts-expect-error the assertion itself can fail: name is not string | undefined here
  expectType<Equal<typeof red.name, string | undefined>>();
  const byPid = await netns.open({ pid: process.pid });
  expectType<Equal<typeof byPid.name, undefined>>();
  const n: Nat = red.nat;
  void n;
  try {
    await red.delete();
  } catch (e) {
    if (e instanceof kit.NetnsError) expectType<Equal<typeof e.code, NetnsErrorCode>>();
    if (e instanceof NetnsError) throw e;
  }
}
void main;

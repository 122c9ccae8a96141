// ESM consumer, moduleResolution: bundler (Vite, esbuild, webpack users): the "import" condition.
import { netns, Netns, NetnsError, TopologyError, bulk, type NetnsErrorCode, type BulkResult } from 'netns-kit';

export async function main(): Promise<string> {
  await using red = await netns.create('consumer-blue', { temporary: true });
  expectType<Equal<typeof red.name, string>>();
  // @ts-expect-error the assertion itself can fail: name is not string | undefined here
  expectType<Equal<typeof red.name, string | undefined>>();
  const handle: Netns = red;
  const made: BulkResult = await bulk.createMany([{ name: 'consumer-b0' }], {});
  expectType<Equal<(typeof made.namespaces)[number]['name'], string>>();
  try {
    await netns.open('absent');
  } catch (e) {
    if (e instanceof TopologyError) expectType<Equal<typeof e.rolledBack, number>>();
    if (e instanceof NetnsError) {
      const c: NetnsErrorCode = e.code;
      return c;
    }
  }
  return handle.label;
}

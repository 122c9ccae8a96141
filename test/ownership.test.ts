// Issue 18, ownership: netns.create() persists like `ip netns add` by default; `temporary: true`
// (or the deprecated `persist: false`) records the namespace as this process's, so gc collects it
// once the process is gone (test/gc.test.ts kills a process holding both kinds and runs gc).
import { existsSync } from 'node:fs';
import { netns } from '../lib/index';
import { createOwner } from '../lib/netns';
import { nsName } from './support/sandbox';

test('who a plain create records as owner', () => {
  expect(createOwner({})).toEqual({ persist: true });
  expect(createOwner({ persist: true })).toEqual({ persist: true });
  expect(createOwner({ temporary: false })).toEqual({ persist: true });
  for (const temporary of [{ temporary: true }, { persist: false }, { temporary: true, persist: false }]) {
    expect(createOwner(temporary)).toMatchObject({ pid: process.pid });
  }
});

test('bad ownership options are refused before anything is created', async () => {
  const name = nsName('own');
  for (const bad of [{ temporary: 'yes' }, { persist: 1 }, { temporary: true, persist: true }, { temporary: false, persist: false }]) {
    await expect(netns.create(name, bad as never)).rejects.toMatchObject({ code: 'ERR_NETNS_INVALID_ARG' });
    expect(existsSync(`/run/netns/${name}`)).toBe(false);
  }
});

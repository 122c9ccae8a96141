/**
 * The registry: what netns-kit created, and for whom, so that `gc()` can remove what was lost
 * (its owner died) and never anything netns-kit did not create.
 *
 * Layout (a tmpfs under /run, so it is forgotten at reboot exactly like the namespaces it tracks;
 * `NETNS_KIT_RUN_DIR` moves it, e.g. for tests):
 *
 *   /run/netns-kit/netns/NAME            a namespace we created (/run/netns/NAME), with its own file
 *   /run/netns-kit/links/NETNS/IFNAME    a link we created in a namespace we do not own
 *   /run/netns-kit/nat/NETNS/TABLE       an nftables table we created in a namespace we do not own
 *   /run/netns-kit/firewall/NETNS/TABLE  a firewall table (lib/firewall.ts) we created in a namespace we do not own
 *   /run/netns-kit/topologies/NAME.json  a topology: its `up` process and whether `up` completed
 *   /run/netns-kit/sets/ID               many namespaces made in one go (bulk.createMany, topology
 *                                        templates): one file for the whole set, not one per namespace
 *                                        (with their veth ends in namespaces the owner does not own)
 *   /run/netns-kit/journal/ID            namespaces made one at a time (netns.create): one append-only
 *                                        file per process, one line per fact, not one file per namespace
 *   /run/netns-kit/netns/NAME            (older releases: a marker file per namespace; still read)
 *
 * Every marker is written BEFORE the kernel object is created and removed AFTER it is deleted, so
 * a crash at any moment leaves at worst a marker without an object (gc drops the marker), never
 * an object of ours without a marker. A marker records its owner:
 *   { pid, start }      the creating process (pid + start time from /proc/PID/stat field 22, so a
 *                       recycled pid is not mistaken for the owner)
 *   { topology: NAME }  a topology; kept for as long as the topology is recorded as complete
 *   { persist: true }   left up on purpose (`netns.create(name, { persist: true })`); never collected
 * and what identifies the object (a namespace's nsfs inode, a link's interface index), so gc never
 * removes a same-named object somebody else made later.
 */
import { isMainThread } from 'node:worker_threads';
import { closeSync, constants as fsConstants, fstatSync, openSync, unlinkSync, promises as fs, mkdirSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { native } from './native';

export type Owner = { pid: number; start: string } | { topology: string } | { persist: true };

export interface NamespaceMarker {
  kind: 'netns';
  name: string;
  owner: Owner;
  /** ISO time the marker was written */
  created: string;
  /** the namespace's nsfs inode once it exists (absent while the creation is in flight) */
  inode?: number;
  /** the namespace set (sets/ID) this entry comes from; absent for a marker file of its own */
  set?: string;
  /** the journal (journal/ID) this entry comes from */
  journal?: string;
}

export interface LinkMarker {
  kind: 'link';
  netns: string;
  name: string;
  owner: Owner;
  created: string;
  /** the interface index we asked the kernel for: the link is ours only if it still has it */
  index: number;
  /** the namespace set (sets/ID) this entry comes from; absent for a marker file of its own */
  set?: string;
}

/** A link a namespace set's call creates in a namespace it does not own (a member's bridge end). */
export interface SetLink {
  netns: string;
  name: string;
  index: number;
}

export interface NatMarker {
  kind: 'nat';
  netns: string;
  table: string;
  owner: Owner;
  created: string;
}

/** A firewall table (lib/firewall.ts) in a namespace we do not own. */
export interface FirewallMarker {
  kind: 'firewall';
  netns: string;
  table: string;
  owner: Owner;
  created: string;
}

export type TopologyState = 'applying' | 'up';

export interface TopologyRecord {
  name: string;
  /** 'applying' until an `up` completes; an 'applying' record whose process died is lost */
  state: TopologyState;
  /** the process running (or that last ran) `up` */
  owner: { pid: number; start: string };
  updated: string;
}

/** Where the registry lives: NETNS_KIT_RUN_DIR or /run/netns-kit. Read at each call. */
export function registryDir(): string {
  return process.env.NETNS_KIT_RUN_DIR || '/run/netns-kit';
}

const dirs = {
  netns: () => path.join(registryDir(), 'netns'),
  links: (ns: string) => path.join(registryDir(), 'links', ns),
  nat: (ns: string) => path.join(registryDir(), 'nat', ns),
  firewall: (ns: string) => path.join(registryDir(), 'firewall', ns),
  topologies: () => path.join(registryDir(), 'topologies'),
  sets: () => path.join(registryDir(), 'sets'),
  journal: () => path.join(registryDir(), 'journal'),
};

let boot: string | undefined;

/** This boot's id (/proc/sys/kernel/random/boot_id): start times are counted from boot. */
function bootId(): string {
  if (boot === undefined) {
    try {
      boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim().slice(0, 8);
    } catch {
      boot = '0';
    }
  }
  return boot;
}

/**
 * When a process started: "BOOT/TICKS", the boot id's first 8 digits and field 22 of
 * /proc/PID/stat (clock ticks since boot); undefined if there is no such process. The boot id
 * keeps a registry that outlived a reboot (a /run that is not a tmpfs) from matching a new process.
 */
export function processStart(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may itself contain ') ': split after the last one.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return `${bootId()}/${fields[19]}`; // field 22 overall; fields[0] here is field 3
}

let self: { pid: number; start: string } | undefined;

/** This process as an owner. */
export function processOwner(): { pid: number; start: string } {
  if (!self || self.pid !== process.pid) self = { pid: process.pid, start: processStart(process.pid) ?? '0' };
  return self;
}

/** True when the owning process no longer exists (or its pid now belongs to another process). */
export function processGone(owner: { pid: number; start: string }): boolean {
  const start = processStart(owner.pid);
  return start === undefined || start !== owner.start;
}

function fileName(name: string): string {
  // Namespace and interface names never contain '/', and '.'/'..' are refused by the validators.
  return name;
}

// Markers are written synchronously: a marker write costs microseconds on a tmpfs, and going
// through libuv's 4-thread pool would queue every namespace creation behind unrelated fs work.
// A marker is created with one write (a crash between open and write leaves an empty file,
// which gc treats as "being written" for a minute, then as stale); later facts (the inode) are
// appended as further JSON lines, so a namespace costs one file creation, not two.
const madeDirs = new Set<string>();

function ensureDir(dir: string): void {
  if (!madeDirs.has(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    madeDirs.add(dir);
  }
}

function writeMarker(file: string, data: unknown): void {
  const dir = path.dirname(file);
  ensureDir(dir);
  try {
    writeFileSync(file, JSON.stringify(data) + '\n', { mode: 0o644 });
  } catch (e) {
    // The directory may have been removed since (an emptied links/NETNS directory): once more.
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    writeFileSync(file, JSON.stringify(data) + '\n', { mode: 0o644 });
  }
}

/** Writes a file whole (topology records, a change of owner, namespace sets): readers see the old or the new one, never a part. */
function writeAtomic(file: string, data: unknown): void {
  ensureDir(path.dirname(file));
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, JSON.stringify(data) + '\n', { mode: 0o644 });
  renameSync(tmp, file);
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    let out: Record<string, unknown> | undefined;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line) continue;
      const v = JSON.parse(line) as Record<string, unknown>;
      out = out ? { ...out, ...v } : v;
    }
    return out as T | undefined;
  } catch {
    return undefined;
  }
}

async function unlinkQuiet(file: string): Promise<void> {
  try {
    unlinkSync(file); // one syscall (rmSync stats first)
  } catch {
    // already gone
  }
}

async function readdirQuiet(dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(dir)).filter((n) => !n.endsWith('.tmp'));
  } catch {
    return [];
  }
}

// ---- namespaces ----

/**
 * The marker of namespace `name`: its own marker file, or its entry in a namespace set; when both
 * (or several sets) name it, the most recently written one — older ones describe a namespace of
 * that name that is gone.
 */
export async function readNamespaceMarker(name: string): Promise<NamespaceMarker | undefined> {
  const own = await readJson<NamespaceMarker>(path.join(dirs.netns(), fileName(name)));
  let best = own;
  for (const set of loadSets()) {
    if (!set.names.has(name)) continue;
    const entry = setEntry(set, name);
    if (!best || entry.created > best.created) best = entry;
  }
  for (const j of loadJournals()) {
    const entry = j.live.get(name);
    if (entry && (!best || entry.created > best.created)) best = journalEntry(j, entry);
  }
  return best;
}

/**
 * Records that we are about to create namespace `name` for `owner`: one line appended to this
 * process's journal (a write, not a file creation: ~1 ms less per namespace on an ext4 /run).
 */
export async function markNamespace(name: string, owner: Owner): Promise<void> {
  journalAppend(name, { owner, created: new Date().toISOString() });
}

/**
 * Appends a JSON line to an existing marker (a later fact: an inode). 'r+' rather than append
 * mode: a marker removed meanwhile is not created again holding only that fact.
 */
function appendToMarker(file: string, data: unknown): void {
  let fd: number;
  try {
    fd = openSync(file, 'r+');
  } catch {
    return;
  }
  try {
    writeSync(fd, JSON.stringify(data) + '\n', fstatSync(fd).size);
  } finally {
    closeSync(fd);
  }
}

/** Adds the inode once the namespace exists. */
export async function confirmNamespace(name: string, inode: number): Promise<void> {
  journalAppend(name, { inode });
}

/** Hands a namespace we created to a new owner (a completed topology, or persist). */
export async function reownNamespace(name: string, owner: Owner): Promise<void> {
  const m = await readNamespaceMarker(name);
  if (!m) return;
  if (m.journal !== undefined) appendToJournal(m.journal, { name, owner });
  else writeAtomic(path.join(dirs.netns(), fileName(name)), { ...m, owner });
}

/** Removes only the marker file of its own of `name` (gc: a stale one; journal entries are separate markers). */
export async function unmarkNamespaceFile(name: string): Promise<void> {
  await unlinkQuiet(path.join(dirs.netns(), fileName(name)));
}

/** Forgets namespace `name` (deleted, or never made): its marker file and every journal's entry. */
export async function unmarkNamespace(name: string): Promise<void> {
  await unlinkQuiet(path.join(dirs.netns(), fileName(name)));
  if (mine?.live.has(name)) journalAppend(name, { deleted: true });
  for (const j of loadJournals()) {
    if (j.id !== mine?.id && j.live.has(name)) unmarkJournalEntry(j.id, name);
  }
}

export async function listNamespaceMarkers(): Promise<Array<{ name: string; marker?: NamespaceMarker; ageMs: number }>> {
  const dir = dirs.netns();
  const out: Array<{ name: string; marker?: NamespaceMarker; ageMs: number }> = [];
  for (const name of await readdirQuiet(dir)) {
    const file = path.join(dir, name);
    const marker = await readJson<NamespaceMarker>(file);
    const st = await fs.stat(file).catch(() => undefined);
    if (!st) continue;
    out.push({ name, marker, ageMs: Date.now() - st.mtimeMs });
  }
  for (const set of loadSets()) {
    for (const name of set.names) out.push({ name, marker: setEntry(set, name), ageMs: Date.now() - set.mtimeMs });
  }
  for (const j of loadJournals()) {
    for (const e of j.live.values()) out.push({ name: e.name, marker: journalEntry(j, e), ageMs: Date.now() - j.mtimeMs });
  }
  return out;
}

// ---- the journal: namespaces made one at a time, one append-only file per process ----
//
// `netns.create` records each namespace as lines appended to its process's journal rather than a
// file of its own (a file creation costs ~1 ms on an ext4 /run, as much as the namespace itself).
// The same order as for marker files holds: the line naming the namespace and its owner is
// written (one write(2), O_APPEND) BEFORE the namespace is created, its inode appended once it
// exists, and a `deleted` line appended AFTER it is gone. So a process killed at any moment leaves
// at worst an entry without a namespace (gc drops it), never a namespace without an entry; gc
// treats each live entry exactly like a marker file of its own (owner lost, same inode, or no
// inode and no newer marker for that name).
//
//   {"writer":{"pid":P,"start":S}}                     first line: the process that appends here
//   {"name":N,"owner":{...},"created":ISO}             about to create N for that owner
//   {"name":N,"inode":I}                               N exists, with that nsfs inode
//   {"name":N,"owner":{...}}                           N handed to another owner
//   {"name":N,"deleted":true}                          N is gone (or was never made)
//
// Any process may append a `deleted` line to another's journal (it deleted that namespace). The
// writer rewrites its journal with only the live entries once it is mostly history (tmp + rename) and
// removes it at exit when no entry is left; the last `deleted` line appended to the journal of a
// process that is gone removes it, and so does gc.

interface JournalLine {
  writer?: { pid: number; start: string };
  name?: string;
  owner?: Owner;
  created?: string;
  inode?: number;
  deleted?: boolean;
}

export interface JournalEntry {
  name: string;
  owner: Owner;
  created: string;
  inode?: number;
}

export interface Journal {
  id: string;
  writer?: { pid: number; start: string };
  live: Map<string, JournalEntry>;
  mtimeMs: number;
}

/** This process's journal, open for appending (undefined until the first namespace). */
let mine: { id: string; fd: number; pid: number; size: number; live: Map<string, JournalEntry> } | undefined;
/**
 * Compact this process's journal once it is past 64 KiB and more than twice what its live entries
 * need (~200 bytes each): a process creating and deleting namespaces for hours keeps a small
 * journal, and a process reading it for the first time (gc, a delete) parses little.
 */
const JOURNAL_COMPACT_BYTES = 64 * 1024;
const JOURNAL_ENTRY_BYTES = 200;

function applyLine(live: Map<string, JournalEntry>, v: JournalLine): void {
  if (typeof v.name !== 'string') return;
  if (v.deleted) {
    live.delete(v.name);
    return;
  }
  const e = live.get(v.name);
  if (v.created !== undefined && v.owner !== undefined) live.set(v.name, { name: v.name, owner: v.owner, created: v.created });
  else if (e && v.inode !== undefined) e.inode = v.inode;
  else if (e && v.owner !== undefined) e.owner = v.owner;
}

/**
 * A worker_threads Worker has module state of its own that dies with it, but its descriptors belong
 * to the process: a Worker terminated mid-call would leak every cached one. So outside the main
 * thread no journal descriptor is kept between appends (an open per append is cheap next to the
 * namespace operation it records).
 */
const KEEP_FDS = isMainThread;

function openJournal(): NonNullable<typeof mine> {
  if (mine && mine.pid === process.pid) {
    if (mine.fd < 0) mine.fd = openSync(path.join(dirs.journal(), mine.id), 'a', 0o644);
    return mine;
  }
  const dir = dirs.journal();
  ensureDir(dir);
  // The writer's pid leads the id (journalWriterDone falls back to it for a journal without its head).
  const id = `${process.pid}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const file = path.join(dir, id);
  const fd = openSync(file, 'a', 0o644);
  const head = JSON.stringify({ writer: processOwner() }) + '\n';
  writeSync(fd, head);
  mine = { id, fd, pid: process.pid, size: head.length, live: new Map() };
  const done = mine;
  process.once('exit', () => {
    // Nothing left to find: the file goes too. Entries left (persistent namespaces, or ones this
    // process did not delete) keep it for gc.
    if (done.live.size === 0) rmSync(file, { force: true });
  });
  return mine;
}

/** Appends one fact about `name` to this process's journal. */
function journalAppend(name: string, fact: Omit<JournalLine, 'name' | 'writer'>): void {
  const j = openJournal();
  const line: JournalLine = { name, ...fact };
  const text = JSON.stringify(line) + '\n';
  try {
    writeSync(j.fd, text);
  } finally {
    if (!KEEP_FDS) {
      closeSync(j.fd);
      j.fd = -1;
    }
  }
  j.size += text.length;
  applyLine(j.live, line);
  // Never truncated in place: readers of other processes follow a journal by reading what was
  // appended since their last look; a compacted journal is a new file (another inode), read whole.
  if (j.size > JOURNAL_COMPACT_BYTES && j.size > 2 * JOURNAL_ENTRY_BYTES * j.live.size) compactJournal(j);
}

/** Rewrites this process's journal with only its live entries (tmp + rename: never seen half-written). */
function compactJournal(j: NonNullable<typeof mine>): void {
  const file = path.join(dirs.journal(), j.id);
  const lines = [JSON.stringify({ writer: processOwner() })];
  for (const e of j.live.values()) {
    lines.push(JSON.stringify({ name: e.name, owner: e.owner, created: e.created }));
    if (e.inode !== undefined) lines.push(JSON.stringify({ name: e.name, inode: e.inode }));
  }
  const text = lines.join('\n') + '\n';
  const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, text, { mode: 0o644 });
  renameSync(tmp, file);
  if (j.fd >= 0) closeSync(j.fd);
  j.fd = KEEP_FDS ? openSync(file, 'a', 0o644) : -1;
  j.size = text.length;
}

/** Descriptors of other processes' journals this process appends to (a delete loop opens each once). */
const otherFds = new Map<string, { fd: number; ino: number }>();

/** Appends a line to another process's journal (never creates one). */
function appendToJournal(id: string, line: JournalLine): void {
  if (id === mine?.id) {
    journalAppend(line.name!, line);
    return;
  }
  const file = path.join(dirs.journal(), id);
  // The journal as last seen (loadJournals): a compacted one is another file, so reopen then.
  const seen = journalCache.get(id)?.ino;
  let o = otherFds.get(id);
  if (o && seen !== undefined && o.ino !== seen) {
    closeSync(o.fd);
    otherFds.delete(id);
    o = undefined;
  }
  if (!o) {
    try {
      // O_APPEND without O_CREAT: each line lands whole at the end; a journal removed meanwhile is not
      // made again. (Node opens every descriptor close-on-exec.)
      const fd = openSync(file, fsConstants.O_WRONLY | fsConstants.O_APPEND);
      o = { fd, ino: seen ?? fstatSync(fd).ino };
      otherFds.set(id, o);
    } catch {
      return;
    }
  }
  try {
    writeSync(o.fd, JSON.stringify(line) + '\n');
  } finally {
    // A journal of this same process is a Worker's (ids lead with the writer's pid): its writer
    // never counts as done while we run, so a cached descriptor would stay open for good.
    if (!KEEP_FDS || id.startsWith(`${process.pid}-`)) closeOther(id);
  }
}

function closeOther(id: string): void {
  const o = otherFds.get(id);
  if (o) closeSync(o.fd);
  otherFds.delete(id);
}

/** Records that namespace `name` of journal `id` is gone; drops the journal when its writer is gone and nothing is left. */
export function unmarkJournalEntry(id: string, name: string): void {
  appendToJournal(id, { name, deleted: true });
  if (id === mine?.id) return;
  // The cached copy is brought up to date by the next read of the file's tail; this answer needs
  // only this entry gone (another process only ever adds `deleted` lines to someone else's journal).
  const c = journalCache.get(id);
  if (!c) return;
  c.journal.live.delete(name);
  if (c.journal.live.size === 0 && journalWriterDone(c.journal)) {
    closeOther(id);
    rmSync(path.join(dirs.journal(), id), { force: true });
  }
}

/**
 * What is known of each journal file: read once whole, then only the lines appended since (a
 * process deleting 1000 namespaces of another one's journal must not parse it 1000 times).
 */
const journalCache = new Map<string, { ino: number; mtimeMs: number; size: number; consumed: number; journal: Journal }>();

function applyText(j: Journal, text: string): void {
  for (const line of text.split('\n')) {
    if (!line) continue;
    let v: JournalLine;
    try {
      v = JSON.parse(line) as JournalLine;
    } catch {
      continue; // a line cut short by a crash: what it said was never acted on
    }
    if (v.writer) j.writer = v.writer;
    else applyLine(j.live, v);
  }
}

/** Reads `file` from byte `from` up to its last complete line; returns the text and where it ends. */
function readLines(file: string, from: number, to: number): { text: string; end: number } | undefined {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const buf = Buffer.alloc(to - from);
    const n = readSync(fd, buf, 0, buf.length, from);
    const last = buf.lastIndexOf(0x0a, n - 1);
    if (last < 0) return { text: '', end: from };
    return { text: buf.toString('utf8', 0, last + 1), end: from + last + 1 };
  } finally {
    closeSync(fd);
  }
}

/** Every journal (this process's own from memory), re-read only where its file changed. */
export function loadJournals(): Journal[] {
  const dir = dirs.journal();
  let files: string[];
  try {
    files = readdirSync(dir).filter((n) => !n.endsWith('.tmp'));
  } catch {
    return [];
  }
  const out: Journal[] = [];
  for (const id of files) {
    if (mine && id === mine.id && mine.pid === process.pid) {
      out.push({ id, writer: processOwner(), live: mine.live, mtimeMs: Date.now() });
      continue;
    }
    const file = path.join(dir, id);
    let st;
    try {
      st = statSync(file);
    } catch {
      continue;
    }
    let c = journalCache.get(id);
    if (c && c.ino === st.ino && c.size === st.size && c.mtimeMs === st.mtimeMs) {
      out.push(c.journal);
      continue;
    }
    if (!c || c.ino !== st.ino || st.size < c.consumed) {
      // New, replaced (compacted) or emptied: read whole.
      c = { ino: st.ino, mtimeMs: st.mtimeMs, size: st.size, consumed: 0, journal: { id, live: new Map(), mtimeMs: st.mtimeMs } };
    }
    const read = readLines(file, c.consumed, st.size);
    if (!read) continue;
    applyText(c.journal, read.text);
    c.consumed = read.end;
    c.size = st.size;
    c.mtimeMs = st.mtimeMs;
    c.journal.mtimeMs = st.mtimeMs;
    journalCache.set(id, c);
    out.push(c.journal);
  }
  for (const id of journalCache.keys()) {
    if (!files.includes(id)) {
      journalCache.delete(id);
      closeOther(id);
    }
  }
  return out;
}

function journalEntry(j: Journal, e: JournalEntry): NamespaceMarker {
  const m: NamespaceMarker = { kind: 'netns', name: e.name, owner: e.owner, created: e.created, journal: j.id };
  if (e.inode !== undefined) m.inode = e.inode;
  return m;
}

/** True when the process that appends to journal `j` is gone (a recycled pid has another start time). */
export function journalWriterDone(j: Journal): boolean {
  if (j.id === mine?.id && mine.pid === process.pid) return false;
  if (j.writer) return processGone(j.writer);
  const pid = Number(j.id.split('-')[0]);
  return !Number.isInteger(pid) || pid <= 0 || processStart(pid) === undefined;
}

/** Removes the journals of processes that are gone and hold no entry any more; returns how many. */
export function pruneJournals(): number {
  let dropped = 0;
  for (const j of loadJournals()) {
    if (j.live.size === 0 && journalWriterDone(j)) {
      closeOther(j.id);
      rmSync(path.join(dirs.journal(), j.id), { force: true });
      dropped++;
    }
  }
  return dropped;
}

/**
 * Removes the journals written by process `pid` that hold no entry any more: for a process at its
 * end whose exit handler may not run (a test runner's, which replaces `process` for the code it
 * runs). Returns how many.
 */
export function dropEmptyJournalsOf(pid: number): number {
  let dropped = 0;
  for (const j of loadJournals()) {
    const writer = j.writer?.pid ?? Number(j.id.split('-')[0]);
    if (writer === pid && j.live.size === 0) {
      closeOther(j.id);
      rmSync(path.join(dirs.journal(), j.id), { force: true });
      dropped++;
    }
  }
  return dropped;
}

// ---- namespace sets: many namespaces, one marker file ----
//
// A file per namespace costs a file creation each (about 1 ms on an ext4 /run, a third of the
// bulk path's whole price per namespace). A set is one file for a whole bulk call: written
// (tmp + rename, so never seen half-written) with every name BEFORE the first namespace is
// created, then one appended line of inodes per chunk as they come to exist. The same rules as for
// a marker file of its own hold per entry: gc collects an entry's namespace once the owner is lost
// and only if it is the one recorded (same inode; no inode recorded = the creation was in flight).
// A set is dropped when none of its namespaces is left: by deleteMany / topology down, by gc.

interface SetHead {
  kind: 'netns-set';
  owner: Owner;
  created: string;
  names: string[];
  links?: SetLink[];
}

export interface NamespaceSet {
  id: string;
  owner: Owner;
  created: string;
  names: Set<string>;
  inodes: Map<string, number>;
  /** links in namespaces the owner does not own, recorded with the set (they die with its namespaces) */
  links: SetLink[];
  mtimeMs: number;
}

const setCache = new Map<string, { mtimeMs: number; size: number; set: NamespaceSet | undefined }>();
/** Sets this process is still filling: never pruned from under it. */
const setsInFlight = new Set<string>();

function parseSet(id: string, text: string, mtimeMs: number): NamespaceSet | undefined {
  const lines = text.split('\n').filter(Boolean);
  if (!lines.length) return undefined;
  try {
    const head = JSON.parse(lines[0]) as SetHead;
    if (head.kind !== 'netns-set' || !Array.isArray(head.names)) return undefined;
    const set: NamespaceSet = { id, owner: head.owner, created: head.created, names: new Set(head.names), inodes: new Map(), links: head.links ?? [], mtimeMs };
    for (const line of lines.slice(1)) {
      // A line cut short by a crash is the last one: what it held was never confirmed.
      let v: { inodes?: Record<string, number> };
      try {
        v = JSON.parse(line) as typeof v;
      } catch {
        break;
      }
      for (const [n, ino] of Object.entries(v.inodes ?? {})) set.inodes.set(n, ino);
    }
    return set;
  } catch {
    return undefined;
  }
}

/** Every namespace set, re-read only when its file changed (a 1000-name set is ~40 KB of JSON). */
function loadSets(): NamespaceSet[] {
  const dir = dirs.sets();
  let files: string[];
  try {
    files = readdirSync(dir).filter((n) => !n.endsWith('.tmp'));
  } catch {
    return [];
  }
  const out: NamespaceSet[] = [];
  for (const id of files) {
    const file = path.join(dir, id);
    let st;
    try {
      st = statSync(file);
    } catch {
      continue;
    }
    let c = setCache.get(file);
    if (!c || c.mtimeMs !== st.mtimeMs || c.size !== st.size) {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch {
        continue;
      }
      c = { mtimeMs: st.mtimeMs, size: st.size, set: parseSet(id, text, st.mtimeMs) };
      setCache.set(file, c);
    }
    if (c.set) out.push(c.set);
  }
  for (const file of setCache.keys()) if (!files.includes(path.basename(file))) setCache.delete(file);
  return out;
}

function setEntry(set: NamespaceSet, name: string): NamespaceMarker {
  const m: NamespaceMarker = { kind: 'netns', name, owner: set.owner, created: set.created, set: set.id };
  const inode = set.inodes.get(name);
  if (inode !== undefined) m.inode = inode;
  return m;
}

/**
 * Records that we are about to create every namespace in `names` for `owner` (and `links`, veth
 * ends of theirs in namespaces the owner does not own, with their chosen indexes); returns the set's id.
 */
export function markNamespaceSet(names: string[], owner: Owner, links: SetLink[] = []): string {
  // The writer's pid leads the id (setWriterDone reads it back).
  const id = `${process.pid}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const head: SetHead = { kind: 'netns-set', owner, created: new Date().toISOString(), names, ...(links.length ? { links } : {}) };
  writeAtomic(path.join(dirs.sets(), id), head);
  setsInFlight.add(id);
  return id;
}

/** Records the inodes of namespaces of set `id` that now exist (one appended line). */
export function confirmNamespaceSet(id: string, inodes: Record<string, number>): void {
  appendToMarker(path.join(dirs.sets(), id), { inodes });
}

/** The set is complete (or abandoned): from now on it may be pruned like any other. */
export function settleNamespaceSet(id: string): void {
  setsInFlight.delete(id);
}

export function unmarkNamespaceSet(id: string): void {
  setsInFlight.delete(id);
  rmSync(path.join(dirs.sets(), id), { force: true });
}

/** Every namespace set (for gc). */
export function listNamespaceSets(): NamespaceSet[] {
  return loadSets();
}

/**
 * Drops the sets that `which` selects once none of their namespaces is left — absent, or replaced
 * by a namespace of that name somebody made later (another inode). Sets this process is still
 * filling are never dropped. Returns how many were dropped.
 */
export async function pruneNamespaceSets(which: (set: NamespaceSet) => boolean | Promise<boolean>): Promise<number> {
  let dropped = 0;
  for (const set of loadSets()) {
    if (setsInFlight.has(set.id) || !(await which(set))) continue;
    const alive = [...set.names].some((name) => {
      let ino: number;
      try {
        ino = statSync(path.join('/run/netns', name)).ino;
      } catch {
        return false;
      }
      const recorded = set.inodes.get(name);
      return recorded === undefined || recorded === ino;
    });
    if (!alive) {
      rmSync(path.join(dirs.sets(), set.id), { force: true });
      dropped++;
    }
  }
  return dropped;
}

/** True when `set` is owned by this very process. */
export function ownedByThisProcess(set: NamespaceSet): boolean {
  return sameOwner(set.owner, processOwner());
}

/**
 * True when the process that wrote `set` can no longer be filling it: this process (its sets in
 * flight are skipped anyway) or one that has exited. The writer's pid leads the set's id; a pid
 * reused since only makes this answer "still there", which keeps the set (the safe side).
 */
export function setWriterDone(set: NamespaceSet): boolean {
  const pid = Number(set.id.split('-')[0]);
  if (!Number.isInteger(pid) || pid <= 0) return true;
  return pid === process.pid || processStart(pid) === undefined;
}

// ---- links in namespaces we do not own ----

export async function markLink(netns: string, name: string, index: number, owner: Owner): Promise<void> {
  const m: LinkMarker = { kind: 'link', netns, name, owner, index, created: new Date().toISOString() };
  writeMarker(path.join(dirs.links(netns), fileName(name)), m);
}

/** The marker of link `name` in `netns`: its own file, or a namespace set's entry; the newest wins. */
export async function readLinkMarker(netns: string, name: string): Promise<LinkMarker | undefined> {
  let best = await readJson<LinkMarker>(path.join(dirs.links(netns), fileName(name)));
  for (const set of loadSets()) {
    for (const l of set.links) {
      if (l.netns !== netns || l.name !== name) continue;
      if (!best || set.created > best.created) best = setLinkEntry(set, l);
    }
  }
  return best;
}

function setLinkEntry(set: NamespaceSet, l: SetLink): LinkMarker {
  return { kind: 'link', netns: l.netns, name: l.name, owner: set.owner, created: set.created, index: l.index, set: set.id };
}

export async function unmarkLink(netns: string, name: string): Promise<void> {
  await unlinkQuiet(path.join(dirs.links(netns), fileName(name)));
  await fs.rmdir(dirs.links(netns)).catch(() => undefined); // only when empty
}

/** The marker files KIND/NETNS/ITEM (links, NAT tables), with their age. */
async function listPerNamespace<T>(kind: 'links' | 'nat' | 'firewall'): Promise<Array<{ netns: string; item: string; marker?: T; ageMs: number }>> {
  const root = path.join(registryDir(), kind);
  const out: Array<{ netns: string; item: string; marker?: T; ageMs: number }> = [];
  for (const netns of await readdirQuiet(root)) {
    for (const item of await readdirQuiet(path.join(root, netns))) {
      const file = path.join(root, netns, item);
      const st = await fs.stat(file).catch(() => undefined);
      if (!st) continue;
      out.push({ netns, item, marker: await readJson<T>(file), ageMs: Date.now() - st.mtimeMs });
    }
  }
  return out;
}

export async function listLinkMarkers(): Promise<Array<{ netns: string; name: string; marker?: LinkMarker; ageMs: number }>> {
  const out = (await listPerNamespace<LinkMarker>('links')).map(({ item, ...m }) => ({ ...m, name: item }));
  for (const set of loadSets()) {
    for (const l of set.links) out.push({ netns: l.netns, name: l.name, marker: setLinkEntry(set, l), ageMs: Date.now() - set.mtimeMs });
  }
  return out;
}

/** The interface index of link `name` in namespace `netns` (by /run/netns name), or undefined. One RTM_GETLINK. */
export async function liveIfIndex(netns: string, name: string): Promise<number | undefined> {
  try {
    const [l] = await native.linkList(path.join('/run/netns', netns), name);
    return l?.index;
  } catch {
    return undefined;
  }
}

/**
 * An interface index for a link we create in a namespace we do not own: random and high, so it
 * practically never collides, and gc recognises the link by it (a same-named link made by
 * somebody else later gets another index).
 */
export function chooseIfIndex(): number {
  return 0x100000 + (randomBytes(4).readUInt32BE(0) % 0x7fe00000);
}

// ---- NAT tables in namespaces we do not own ----

export async function markNat(netns: string, table: string, owner: Owner): Promise<void> {
  const m: NatMarker = { kind: 'nat', netns, table, owner, created: new Date().toISOString() };
  writeMarker(path.join(dirs.nat(netns), fileName(table)), m);
}

export async function unmarkNat(netns: string, table: string): Promise<void> {
  await unlinkQuiet(path.join(dirs.nat(netns), fileName(table)));
  await fs.rmdir(dirs.nat(netns)).catch(() => undefined);
}

export async function readNatMarker(netns: string, table: string): Promise<NatMarker | undefined> {
  return readJson<NatMarker>(path.join(dirs.nat(netns), fileName(table)));
}

export async function listNatMarkers(): Promise<Array<{ netns: string; table: string; marker?: NatMarker; ageMs: number }>> {
  return (await listPerNamespace<NatMarker>('nat')).map(({ item, ...m }) => ({ ...m, table: item }));
}

// ---- firewall tables in namespaces we do not own ----

export async function markFirewall(netns: string, table: string, owner: Owner): Promise<void> {
  const m: FirewallMarker = { kind: 'firewall', netns, table, owner, created: new Date().toISOString() };
  writeMarker(path.join(dirs.firewall(netns), fileName(table)), m);
}

export async function unmarkFirewall(netns: string, table: string): Promise<void> {
  await unlinkQuiet(path.join(dirs.firewall(netns), fileName(table)));
  await fs.rmdir(dirs.firewall(netns)).catch(() => undefined);
}

export async function readFirewallMarker(netns: string, table: string): Promise<FirewallMarker | undefined> {
  return readJson<FirewallMarker>(path.join(dirs.firewall(netns), fileName(table)));
}

export async function listFirewallMarkers(): Promise<Array<{ netns: string; table: string; marker?: FirewallMarker; ageMs: number }>> {
  return (await listPerNamespace<FirewallMarker>('firewall')).map(({ item, ...m }) => ({ ...m, table: item }));
}

// ---- topologies ----

function topologyFile(name: string): string {
  return path.join(dirs.topologies(), `${name}.json`);
}

export async function readTopology(name: string): Promise<TopologyRecord | undefined> {
  return readJson<TopologyRecord>(topologyFile(name));
}

export async function writeTopology(record: TopologyRecord): Promise<void> {
  writeAtomic(topologyFile(record.name), record);
}

export async function removeTopology(name: string): Promise<void> {
  await unlinkQuiet(topologyFile(name));
}

export async function listTopologies(): Promise<TopologyRecord[]> {
  const out: TopologyRecord[] = [];
  for (const f of await readdirQuiet(dirs.topologies())) {
    if (!f.endsWith('.json')) continue;
    const r = await readJson<TopologyRecord>(path.join(dirs.topologies(), f));
    if (r) out.push(r);
  }
  return out;
}

/** A topology is lost when its record is gone, or its `up` never completed and that process is dead. */
export function topologyLost(record: TopologyRecord | undefined): boolean {
  if (!record) return true;
  return record.state !== 'up' && processGone(record.owner);
}

/** Whether an owner has lost track of its objects. `records` caches topology records by name. */
export async function ownerLost(owner: Owner | undefined, records: Map<string, TopologyRecord | undefined>): Promise<boolean> {
  if (!owner || typeof owner !== 'object') return true;
  if ('persist' in owner) return false;
  if ('topology' in owner) {
    if (!records.has(owner.topology)) records.set(owner.topology, await readTopology(owner.topology));
    return topologyLost(records.get(owner.topology));
  }
  return processGone(owner);
}

export function sameOwner(a: Owner | undefined, b: Owner): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

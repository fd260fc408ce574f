/**
 * Tail diagnostics for one node, off unless RINGKV_DIAG_TAIL names a
 * directory: once a second the node appends one JSON line to
 * `<dir>/<node id>-<pid>.jsonl` saying where that second's time went:
 *
 * - `loop`: event-loop delay (perf_hooks monitorEventLoopDelay, 1 ms
 *   resolution): p50 / p99 / max ms. A request that arrives while the loop is
 *   busy waits at least this long before any of ringkv's code sees it.
 * - `gc`: pauses by kind (scavenge, mark-compact, incremental marking, weak
 *   callbacks): count, total and longest ms.
 * - `fs`: WAL fdatasync (count, p50 / p99 / max ms: a group-commit cycle's
 *   disk time), synchronous appends and positional reads (count, total and
 *   longest ms: these block the loop).
 * - `write`, `read`, `apply`: the coordinator's timings (CoordinatorProbe):
 *   write quorum / local durable / first and second peer ack, read peer
 *   reply, a peer's kv.apply served here, each as count, p50, p99, max ms;
 *   `slowWrites`: of the writes past `slowWriteMs`, how many the local copy
 *   finished last (the disk), how many a peer (the round trip).
 * - `timers`: the gossip/claimant/hint-replay timers are not hooked; a long
 *   one shows up as a `loop` max without GC or fs time in that second.
 * - `cpuMs`: user + system CPU of the process in the second; `heap`: the
 *   young generation's size and the old generation's use (KiB), so that
 *   scavenges × new space ≈ bytes allocated.
 *
 * When the variable is unset nothing here runs and nothing is wrapped, so
 * the measured path is exactly the production one.
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';
import { getHeapSpaceStatistics } from 'node:v8';
import { PerformanceObserver, createHistogram, monitorEventLoopDelay, type RecordableHistogram } from 'node:perf_hooks';
import type { AppendFile, FileSystem, ReadFile } from '../core/index.ts';
import type { CoordinatorProbe } from '../replication/index.ts';

/** The environment variable that turns the diagnostics on (its value: the output directory). */
export const tailDiagEnv = 'RINGKV_DIAG_TAIL';
/**
 * Set as well (to anything): the node also samples every allocation, those
 * collected since included (set to `survivors`: only those that outlived
 * a young-generation collection, i.e. what scavenges copy and promote),
 * and writes `<dir>/<node id>-<pid>.heapprofile` (Chrome DevTools format)
 * when it stops: bytes allocated by function.
 */
export const heapDiagEnv = 'RINGKV_DIAG_HEAP';
/** RINGKV_DIAG_HEAP's value that samples only allocations still alive at the young-generation collection after them. */
export const heapDiagSurvivors = 'survivors';
/** Mean bytes between allocation samples. */
const heapSamplingIntervalBytes = 32 * 1024;
/** One line per this many ms. */
export const tailDiagIntervalMs = 1000;
/** A write slower than this is classified by what finished last. */
export const slowWriteMs = 15;

const gcKinds: Record<number, string> = { 1: 'scavenge', 2: 'markCompact', 4: 'incremental', 8: 'weakCallbacks' };

/** Millisecond timings in a histogram of nanoseconds (perf_hooks wants integers >= 1). */
class Timings {
  private readonly h: RecordableHistogram = createHistogram();
  private total = 0;

  add(ms: number): void {
    this.h.record(Math.max(1, Math.round(ms * 1e6)));
    this.total += ms;
  }

  take(): { n: number; p50: number; p99: number; max: number; totalMs: number } | undefined {
    const n = this.h.count;
    if (n === 0) return undefined;
    const out = { n, p50: round(this.h.percentile(50) / 1e6), p99: round(this.h.percentile(99) / 1e6), max: round(this.h.max / 1e6), totalMs: round(this.total) };
    this.h.reset();
    this.total = 0;
    return out;
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

export class TailDiagnostics {
  private readonly loop = monitorEventLoopDelay({ resolution: 1 });
  private readonly gc = new Map<string, Timings>();
  private readonly gcObserver: PerformanceObserver;
  private readonly sync = new Timings();
  private readonly appendSync = new Timings();
  private readonly readSync = new Timings();
  private readonly writeQuorum = new Timings();
  private readonly writeLocal = new Timings();
  private readonly writePeer1 = new Timings();
  private readonly writePeer2 = new Timings();
  private readonly readPeer = new Timings();
  private readonly readTotal = new Timings();
  private readonly applyServed = new Timings();
  private slowLocalLast = 0;
  private slowPeerLast = 0;
  private cpu = process.cpuUsage();
  private timer: ReturnType<typeof setInterval> | undefined;
  private file: string | undefined;
  private heapSession: Session | undefined;

  /** Set by RINGKV_DIAG_TAIL, else undefined: nothing is measured. */
  static fromEnv(): TailDiagnostics | undefined {
    const dir = process.env[tailDiagEnv];
    return dir === undefined || dir === '' ? undefined : new TailDiagnostics(dir);
  }

  private constructor(private readonly dir: string) {
    this.gcObserver = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        const kind = gcKinds[(entry as { detail?: { kind?: number } }).detail?.kind ?? 0] ?? 'other';
        let t = this.gc.get(kind);
        if (t === undefined) {
          t = new Timings();
          this.gc.set(kind, t);
        }
        t.add(entry.duration);
      }
    });
  }

  /** Starts the per-second lines in `<dir>/<nodeId>.jsonl`. */
  start(nodeId: string): void {
    mkdirSync(this.dir, { recursive: true });
    // Named by pid too: several clusters on one machine have nodes of the same id.
    this.file = join(this.dir, `${nodeId}-${process.pid}.jsonl`);
    this.loop.enable();
    this.gcObserver.observe({ entryTypes: ['gc'] });
    this.timer = setInterval(() => this.emit(), tailDiagIntervalMs);
    this.timer.unref();
    if (process.env[heapDiagEnv] !== undefined) {
      this.heapSession = new Session();
      this.heapSession.connect();
      // `survivors`: only allocations that outlived a young-generation collection (what scavenges copy and promote).
      this.heapSession.post('HeapProfiler.startSampling', {
        samplingInterval: heapSamplingIntervalBytes,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: process.env[heapDiagEnv] !== heapDiagSurvivors,
      });
    }
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.loop.disable();
    this.gcObserver.disconnect();
    const session = this.heapSession;
    const file = this.file;
    this.heapSession = undefined;
    if (session !== undefined && file !== undefined) {
      session.post('HeapProfiler.stopSampling', (error, result) => {
        if (error === null) writeFileSync(file.replace(/\.jsonl$/, '.heapprofile'), JSON.stringify(result.profile));
        session.disconnect();
      });
    }
  }

  readonly probe: CoordinatorProbe = {
    write: (quorumMs, localMs, peerMs) => {
      this.writeQuorum.add(quorumMs);
      if (localMs !== undefined) this.writeLocal.add(localMs);
      const peers = peerMs.filter((ms): ms is number => ms !== undefined).sort((a, b) => a - b);
      if (peers[0] !== undefined) this.writePeer1.add(peers[0]);
      if (peers[1] !== undefined) this.writePeer2.add(peers[1]);
      if (quorumMs >= slowWriteMs) {
        // The quorum's last member decided it: the local disk if it finished after the first peer.
        if (localMs !== undefined && (peers[0] === undefined || localMs >= peers[0])) this.slowLocalLast++;
        else this.slowPeerLast++;
      }
    },
    read: (totalMs, peerMs) => {
      this.readTotal.add(totalMs);
      if (peerMs !== undefined) this.readPeer.add(peerMs);
    },
    apply: (ms) => this.applyServed.add(ms),
  };

  /** `fs` with fdatasync, synchronous appends and positional reads timed. */
  wrapFs(fs: FileSystem): FileSystem {
    const { sync, appendSync, readSync } = this;
    const timeAppend = (file: AppendFile): AppendFile => ({
      get path() {
        return file.path;
      },
      get size() {
        return file.size;
      },
      append: (data) => file.append(data),
      appendSync(data) {
        const t0 = performance.now();
        file.appendSync(data);
        appendSync.add(performance.now() - t0);
      },
      sync() {
        const t0 = performance.now();
        return file.sync().then(() => sync.add(performance.now() - t0));
      },
      close: () => file.close(),
    });
    const timeRead = (file: ReadFile): ReadFile => ({
      get path() {
        return file.path;
      },
      get size() {
        return file.size;
      },
      readSync(position, length) {
        const t0 = performance.now();
        const out = file.readSync(position, length);
        readSync.add(performance.now() - t0);
        return out;
      },
      readSyncInto(position, length, target) {
        const t0 = performance.now();
        const out = file.readSyncInto(position, length, target);
        readSync.add(performance.now() - t0);
        return out;
      },
      read: (position, length) => file.read(position, length),
      close: () => file.close(),
    });
    return {
      mkdirp: (dir) => fs.mkdirp(dir),
      list: (dir) => fs.list(dir),
      exists: (path) => fs.exists(path),
      size: (path) => fs.size(path),
      openAppend: async (path, options) => timeAppend(await fs.openAppend(path, options)),
      openRead: async (path) => timeRead(await fs.openRead(path)),
      readFile: (path) => fs.readFile(path),
      rename: (from, to) => fs.rename(from, to),
      remove: (path) => fs.remove(path),
      truncate: (path, length) => fs.truncate(path, length),
      syncDir: (dir) => fs.syncDir(dir),
    };
  }

  private emit(): void {
    if (this.file === undefined) return;
    const cpu = process.cpuUsage(this.cpu);
    this.cpu = process.cpuUsage();
    const gc: Record<string, unknown> = {};
    for (const [kind, t] of this.gc) {
      const taken = t.take();
      if (taken !== undefined) gc[kind] = taken;
    }
    let newSpaceKB = 0;
    let oldSpaceKB = 0;
    for (const space of getHeapSpaceStatistics()) {
      if (space.space_name === 'new_space') newSpaceKB = Math.round(space.space_size / 1024);
      else if (space.space_name === 'old_space') oldSpaceKB = Math.round(space.space_used_size / 1024);
    }
    const line = {
      t: new Date().toISOString().slice(11, 19),
      cpuMs: Math.round((cpu.user + cpu.system) / 1000),
      heap: { newSpaceKB, oldSpaceKB },
      loop: { p50: round(this.loop.percentile(50) / 1e6), p99: round(this.loop.percentile(99) / 1e6), max: round(this.loop.max / 1e6) },
      gc,
      fs: { sync: this.sync.take(), appendSync: this.appendSync.take(), readSync: this.readSync.take() },
      write: { quorum: this.writeQuorum.take(), local: this.writeLocal.take(), peer1: this.writePeer1.take(), peer2: this.writePeer2.take() },
      slowWrites: { localLast: this.slowLocalLast, peerLast: this.slowPeerLast },
      read: { total: this.readTotal.take(), peer: this.readPeer.take() },
      apply: this.applyServed.take(),
    };
    this.loop.reset();
    this.slowLocalLast = 0;
    this.slowPeerLast = 0;
    appendFileSync(this.file, `${JSON.stringify(line)}\n`);
  }
}

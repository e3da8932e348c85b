/**
 * Echo benchmark: the hand-written floor (floor-echo) and a target server, alternated in the
 * SAME run (ABBA order: floor, target, target, floor, ...), same calls, duration and load.
 *
 * Per run: the server is spawned (pinned to core 0 with taskset when available), the load
 * generator runs as a separate process (pinned to core 1), and the server's CPU time and RSS
 * are read from /proc at the start and end of the load generator's steady-state window
 * (after ramp-up, before the grace period) and every 500 ms in between.
 *
 * Prints CPU-seconds per call-minute, the target/floor ratio, RSS, RTT and loss/corruption;
 * `--out FILE` writes everything as JSON.
 *
 *   node build/bench/echo-compare.js --quick --target "node build/bench/floor-echo.js --port {port}"
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { LoadResult } from './loadgen.js';
import { writeToneWav } from './lib/tone.js';
import {
  coreBusyPercent,
  freePort,
  hasTaskset,
  pinPid,
  readCoreTicks,
  sampleTree,
  spawnServer,
  countSyscalls,
  type SyscallCount,
  splitCommand,
  type ProcSample,
  type Spawned,
} from './lib/proc.js';

const LOADGEN_JS = fileURLToPath(new URL('./loadgen.js', import.meta.url));
const FLOOR_JS = fileURLToPath(new URL('./floor-echo.js', import.meta.url));
const FLOOR_PLAY_JS = fileURLToPath(new URL('./floor-play.js', import.meta.url));

export const DEFAULT_TARGET = 'node dist/cli/main.js echo --host 127.0.0.1 --port {port}';
export const DEFAULT_FLOOR = `node ${FLOOR_JS} --host 127.0.0.1 --port {port}`;
/** Play mode: every caller hears a looped 10 s tone ({wav}); the callers are muted. */
export const DEFAULT_PLAY_TARGET = 'node dist/cli/main.js play {wav} --loop --quiet --host 127.0.0.1 --port {port}';
export const DEFAULT_PLAY_FLOOR = `node ${FLOOR_PLAY_JS} --wav {wav} --host 127.0.0.1 --port {port}`;

export interface CompareOptions {
  /** echo: the load generator verifies echoes; play: muted callers, pacing of what they hear. */
  mode: 'echo' | 'play';
  target: string;
  floor: string;
  targetName: string;
  calls: number;
  durationS: number;
  rampS?: number;
  graceMs: number;
  rounds: number;
  style: 'normal' | 'split' | 'coalesce';
  group: number;
  pin: boolean;
  /** Echo through a u-law round trip: the load generator's G.711-exact payloads (`--g711`). */
  g711?: boolean;
  /** Each call starts its audio this long after connecting (`--audio-delay`). */
  audioDelayMs?: number;
  /** Seconds to pause between runs (sockets in TIME_WAIT, caches). */
  pauseS: number;
  /**
   * Run floor and target at the same time, both on the server core, each under its own load
   * generator (both on the other core), instead of one after the other: a drift of the machine's
   * speed then hits both alike, for figures a few % apart. The servers share the core, so use it
   * only where both together stay well under one core.
   */
  together?: boolean;
  log: (line: string) => void;
}

export interface RunRecord {
  server: 'floor' | 'target';
  name: string;
  round: number;
  command: string[];
  pinned: { server: boolean; loadgen: boolean };
  windowS: number;
  serverCpuSec: number;
  serverCpuPercent: number;
  cpuSecPerCallMinute: number;
  rssMB: { idle: number; start: number; end: number; max: number };
  loadgenCpuPercent: number;
  /** Event-loop wake-ups (epoll waits) per second of the window, and system calls per frame sent (null: no perf). */
  wakeupsPerSec: number | null;
  syscallsPerFrame: number | null;
  /**
   * Busy % of every core over the window from /proc/stat, including irq/softirq time that
   * /proc/PID/stat does not charge to any process (loopback TCP work). When pinned, core 0
   * holds the server only and core 1 the load generator (and this idle orchestrator).
   */
  coreBusyPercent: number[];
  /**
   * Busy % of each core NOT explained by the measured processes during the window:
   * [core0 - server, core1 - load generator] when pinned. A few % is kernel noise; more means
   * something else (another test suite, another tenant) ran on the machine and skewed the run.
   */
  foreignBusyPercent: number[];
  /** Busy % of each core during 1 s before the run, with no server and no load. */
  backgroundBusyPercent: number[];
  warnings: string[];
  load: LoadResult;
}

function r3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** 4 significant digits (cpu-s per call-minute is ~0.01-0.1). */
function sig4(x: number): number {
  return Number.isFinite(x) && x !== 0 ? Number(x.toPrecision(4)) : x;
}

/** The prompt of play mode ({wav} in commands), written once per process. */
let promptWav = '';

function substitute(cmd: string, port: number): string[] {
  const argv = splitCommand(cmd).map((a) => a.replaceAll('{port}', String(port)).replaceAll('{wav}', promptWav));
  if (argv[0] === 'node') argv[0] = process.execPath;
  return argv;
}

type CoreTicks = ReturnType<typeof readCoreTicks>;

interface LoadgenRun {
  result: LoadResult;
  cores: { steady: CoreTicks; stop: CoreTicks };
  steady: { server: ProcSample; loadgen: ProcSample | null };
  stop: { server: ProcSample; loadgen: ProcSample | null };
  rssMaxMB: number;
  pinned: boolean;
  syscalls: SyscallCount | null;
}

/** Run the load generator as a child process and sample the server at its window edges. */
function runLoadgen(opts: CompareOptions, port: number, serverPid: number): Promise<LoadgenRun> {
  const outFile = join(mkdtempSync(join(tmpdir(), 'as-bench-')), 'load.json');
  const args = [
    LOADGEN_JS,
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--calls',
    String(opts.calls),
    '--duration',
    String(opts.durationS),
    '--grace',
    String(opts.graceMs),
    '--json',
    '--events',
    '--out',
    outFile,
  ];
  if (opts.rampS !== undefined) args.push('--ramp', String(opts.rampS));
  if (opts.mode === 'play') args.push('--mode', 'play', '--mute');
  if (opts.g711 === true) args.push('--g711');
  if (opts.audioDelayMs !== undefined) args.push('--audio-delay', String(opts.audioDelayMs));
  if (opts.style === 'split') args.push('--split');
  if (opts.style === 'coalesce') args.push('--coalesce', '--group', String(opts.group));
  const pinned = opts.pin && hasTaskset();
  const child = pinned
    ? spawn('taskset', ['-c', '1', process.execPath, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ramp = opts.rampS ?? Math.min(10, opts.calls * 0.002);
  const limitMs = (ramp + opts.durationS) * 1000 + opts.graceMs + 30000;

  return new Promise<LoadgenRun>((resolve, reject) => {
    let steady: LoadgenRun['steady'] | null = null;
    let stop: LoadgenRun['stop'] | null = null;
    let coresSteady: CoreTicks = [];
    let coresStop: CoreTicks = [];
    let rssMax = 0;
    let sampler: NodeJS.Timeout | null = null;
    let counter: ReturnType<typeof countSyscalls> | null = null;
    let syscalls: Promise<SyscallCount | null> = Promise.resolve(null);
    let errText = '';
    const sampleBoth = (): { server: ProcSample; loadgen: ProcSample | null } | null => {
      const s = sampleTree(serverPid);
      if (s === null) return null;
      rssMax = Math.max(rssMax, s.rssMB);
      return { server: s, loadgen: child.pid === undefined ? null : sampleTree(child.pid) };
    };
    const killer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    let buf = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.startsWith('EVENT steady')) {
          steady = sampleBoth();
          coresSteady = readCoreTicks();
          counter = countSyscalls(serverPid);
          const tick = (): void => {
            sampleBoth();
            sampler = setTimeout(tick, 500);
          };
          sampler = setTimeout(tick, 500);
        } else if (line.startsWith('EVENT stop-sending')) {
          stop = sampleBoth();
          coresStop = readCoreTicks();
          if (counter !== null) syscalls = counter.stop();
          if (sampler !== null) clearTimeout(sampler);
          sampler = null;
        } else if (!line.startsWith('EVENT ')) {
          errText += line + '\n';
        }
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(killer);
      if (sampler !== null) clearTimeout(sampler);
      let result: LoadResult | null = null;
      try {
        result = JSON.parse(readFileSync(outFile, 'utf8')) as LoadResult;
      } catch {
        /* reported below */
      }
      rmSync(join(outFile, '..'), { recursive: true, force: true });
      if (result === null || steady === null || stop === null) {
        reject(new Error(`load generator failed (code ${code}, signal ${signal}): ${errText.trim() || 'no result'}`));
        return;
      }
      const run = { result, steady, stop, rssMaxMB: rssMax, pinned, cores: { steady: coresSteady, stop: coresStop } };
      void syscalls.then((count) => resolve({ ...run, syscalls: count }));
    });
  });
}

async function runOne(opts: CompareOptions, which: 'floor' | 'target', round: number): Promise<RunRecord> {
  const bg0 = readCoreTicks();
  await new Promise((r) => setTimeout(r, 1000));
  const background = coreBusyPercent(bg0, readCoreTicks());
  const { server, port, argv } = await spawnOne(opts, which);
  try {
    await new Promise((r) => setTimeout(r, 300)); // let start-up work (JIT, GC) settle
    const idle = server.sample();
    const lg = await runLoadgen(opts, port, server.pid);
    return record(opts, which, round, { server, argv, idle, lg, background, shared: false });
  } finally {
    await server.stop();
  }
}

/** Floor and target at the same time ({@link CompareOptions.together}); the order of start alternates. */
async function runPair(opts: CompareOptions, round: number): Promise<RunRecord[]> {
  const bg0 = readCoreTicks();
  await new Promise((r) => setTimeout(r, 1000));
  const background = coreBusyPercent(bg0, readCoreTicks());
  const order = round % 2 === 1 ? (['floor', 'target'] as const) : (['target', 'floor'] as const);
  const spawned: Array<Awaited<ReturnType<typeof spawnOne>> & { which: 'floor' | 'target' }> = [];
  try {
    for (const which of order) spawned.push({ which, ...(await spawnOne(opts, which)) });
    await new Promise((r) => setTimeout(r, 300));
    const idle = spawned.map((x) => x.server.sample());
    const lgs = await Promise.all(spawned.map((x) => runLoadgen(opts, x.port, x.server.pid)));
    return spawned.map((x, i) =>
      record(opts, x.which, round, { server: x.server, argv: x.argv, idle: idle[i]!, lg: lgs[i]!, background, shared: true }),
    );
  } finally {
    await Promise.all(spawned.map((x) => x.server.stop()));
  }
}

async function spawnOne(opts: CompareOptions, which: 'floor' | 'target'): Promise<{ server: Spawned; port: number; argv: string[] }> {
  const port = await freePort();
  const argv = substitute(which === 'floor' ? opts.floor : opts.target, port);
  const server = await spawnServer({ argv, port, ...(opts.pin ? { core: 0 } : {}) });
  return { server, port, argv };
}

interface Measured {
  server: Spawned;
  argv: string[];
  idle: ProcSample | null;
  lg: LoadgenRun;
  background: number[];
  /** Another server and load generator ran at the same time on the same cores. */
  shared: boolean;
}

function record(opts: CompareOptions, which: 'floor' | 'target', round: number, m: Measured): RunRecord {
  const { server, argv, idle, lg, background } = m;
  const s0 = lg.steady.server;
  const s1 = lg.stop.server;
  const windowS = (s1.t - s0.t) / 1000;
  const cpu = s1.cpuSec - s0.cpuSec;
  const lgCpu =
    lg.steady.loadgen !== null && lg.stop.loadgen !== null
      ? (lg.stop.loadgen.cpuSec - lg.steady.loadgen.cpuSec) / ((lg.stop.loadgen.t - lg.steady.loadgen.t) / 1000)
      : lg.result.loadgen.cpuPercentOfCore / 100;
  const warnings: string[] = [];
  const busy = coreBusyPercent(lg.cores.steady, lg.cores.stop);
  if (lg.pinned && (busy[1] ?? 0) > 90) warnings.push(`load generator core at ${busy[1]} % busy: it may be the bottleneck`);
  else if (lgCpu > 0.85) warnings.push(`load generator at ${Math.round(lgCpu * 100)} % of a core: it may be the bottleneck`);
  if (lg.result.sendLagMs.p99 > 5) warnings.push(`load generator send lag p99 ${lg.result.sendLagMs.p99} ms (> 5 ms)`);
  if (windowS < 1) warnings.push(`steady window only ${windowS.toFixed(2)} s`);
  if (server.exited) warnings.push('server exited during the run');
  const lgPct = Math.round(lgCpu * 1000) / 10;
  const serverPct = Math.round((cpu / windowS) * 1000) / 10;
  // Shared cores (together): another server and load generator ran there too, so what is not
  // this pair's is not known.
  const foreign =
    server.pinned && lg.pinned && !m.shared
      ? busy.map((b, i) => Math.max(0, Math.round((b - (i === 0 ? serverPct : i === 1 ? lgPct : 0)) * 10) / 10))
      : [];
  if (foreign.some((f) => f > 5)) {
    warnings.push(`other load on the machine during the run: core busy not explained by server/loadgen ${foreign.join('/')} %`);
  }
  if (background.some((b) => b > 5)) warnings.push(`machine busy before the run: ${background.join('/')} % per core`);
  warnings.push(...lg.result.problems);
  return {
    server: which,
    name: which === 'floor' ? 'floor' : opts.targetName,
    round,
    command: argv,
    pinned: { server: server.pinned, loadgen: lg.pinned },
    windowS: r3(windowS),
    serverCpuSec: r3(cpu),
    serverCpuPercent: serverPct,
    cpuSecPerCallMinute: sig4(cpu / ((opts.calls * windowS) / 60)),
    rssMB: { idle: idle?.rssMB ?? 0, start: s0.rssMB, end: s1.rssMB, max: lg.rssMaxMB },
    loadgenCpuPercent: lgPct,
    // Each call gets one frame per 20 ms from the server (its echo, or the prompt's next frame).
    wakeupsPerSec: lg.syscalls === null ? null : Math.round(lg.syscalls.wakeups / windowS),
    syscallsPerFrame: lg.syscalls === null ? null : r3(lg.syscalls.syscalls / ((opts.calls * windowS * 1000) / 20)),
    coreBusyPercent: busy,
    foreignBusyPercent: foreign,
    backgroundBusyPercent: background,
    warnings,
    load: lg.result,
  };
}

export interface CompareResult {
  startedAt: string;
  host: { cpus: number; model: string; node: string };
  options: Omit<CompareOptions, 'log'>;
  runs: RunRecord[];
  summary: {
    floor: ServerSummary;
    target: ServerSummary;
    /** mean target cpu-s per call-minute / mean floor. */
    ratio: number;
    /** target / floor of each round (the two runs of a round are adjacent in time). */
    ratioPerRound: number[];
    ok: boolean;
  };
}

interface ServerSummary {
  name: string;
  cpuSecPerCallMinute: number;
  cpuPercent: number;
  rssMaxMB: number;
  rttMs: { p50: number; p99: number; max: number };
  /** Play mode: inter-arrival of the audio the callers heard, and its drift over the run. */
  gapMs: { p50: number; p99: number; max: number } | null;
  /** Play mode: the largest |drift| of a call's last frame (how far any call ended off its timeline). */
  driftMaxAbsMs: number | null;
  /** Play mode: p99 of every frame's |drift| (worst round), and the % of frames in bursts (mean). */
  frameDriftP99Ms: number | null;
  burstPercent: number | null;
  wakeupsPerSec: number | null;
  syscallsPerFrame: number | null;
  frames: { sent: number; verified: number; lost: number; corrupted: number; unexpected: number; silence: number };
  loadgenCpuPercent: number;
  coreBusyPercent: number[];
}

function summarize(runs: RunRecord[], name: string): ServerSummary {
  const mean = (f: (r: RunRecord) => number): number => runs.reduce((a, r) => a + f(r), 0) / Math.max(1, runs.length);
  const sum = (f: (r: RunRecord) => number): number => runs.reduce((a, r) => a + f(r), 0);
  return {
    name,
    cpuSecPerCallMinute: sig4(mean((r) => r.cpuSecPerCallMinute)),
    cpuPercent: Math.round(mean((r) => r.serverCpuPercent) * 10) / 10,
    rssMaxMB: Math.max(0, ...runs.map((r) => r.rssMB.max)),
    rttMs: {
      p50: r3(mean((r) => r.load.rttMs.p50)),
      p99: r3(mean((r) => r.load.rttMs.p99)),
      max: Math.max(0, ...runs.map((r) => r.load.rttMs.max)),
    },
    gapMs: runs.every((r) => r.load.play !== null)
      ? {
          p50: r3(mean((r) => r.load.play!.interArrivalMs.p50)),
          p99: r3(mean((r) => r.load.play!.interArrivalMs.p99)),
          max: Math.max(0, ...runs.map((r) => r.load.play!.interArrivalMs.max)),
        }
      : null,
    driftMaxAbsMs: runs.every((r) => r.load.play !== null) ? Math.max(0, ...runs.map((r) => r.load.play!.driftMs.maxAbs)) : null,
    frameDriftP99Ms: runs.every((r) => r.load.play !== null) ? Math.max(0, ...runs.map((r) => r.load.play!.frameDriftAbsMs.p99)) : null,
    burstPercent: runs.every((r) => r.load.play !== null) ? r3(mean((r) => r.load.play!.burstPercent)) : null,
    wakeupsPerSec: runs.every((r) => r.wakeupsPerSec !== null) ? Math.round(mean((r) => r.wakeupsPerSec!)) : null,
    syscallsPerFrame: runs.every((r) => r.syscallsPerFrame !== null) ? r3(mean((r) => r.syscallsPerFrame!)) : null,
    frames: {
      sent: sum((r) => r.load.frames.sent),
      verified: sum((r) => r.load.frames.verified),
      lost: sum((r) => r.load.frames.lost),
      corrupted: sum((r) => r.load.frames.corrupted),
      unexpected: sum((r) => r.load.frames.unexpected),
      silence: sum((r) => r.load.frames.silence),
    },
    loadgenCpuPercent: Math.round(mean((r) => r.loadgenCpuPercent) * 10) / 10,
    coreBusyPercent: (runs[0]?.coreBusyPercent ?? []).map((_, i) => Math.round(mean((r) => r.coreBusyPercent[i] ?? 0) * 10) / 10),
  };
}

export async function compare(opts: CompareOptions): Promise<CompareResult> {
  const startedAt = new Date().toISOString();
  if (opts.pin) pinPid(process.pid, 1); // keep this orchestrator off the server's core
  // Pre-flight: both commands must start and listen, before any time is spent measuring.
  for (const [which, cmd] of [
    ['floor', opts.floor],
    ['target', opts.target],
  ] as const) {
    const port = await freePort();
    const s = await spawnServer({ argv: substitute(cmd, port), port }).catch((err: unknown) => {
      throw new Error(`${which} does not start: ${err instanceof Error ? err.message : String(err)}`);
    });
    await s.stop();
  }
  const runs: RunRecord[] = [];
  for (let round = 1; round <= opts.rounds; round++) {
    // ABBA order (floor, target | target, floor | ...) so a slow drift of the machine (thermal,
    // frequency, background load) does not systematically favour whichever runs second.
    if (opts.together === true) {
      opts.log(`round ${round}/${opts.rounds}: floor and target together (${opts.calls} calls each x ${opts.durationS} s) ...`);
      for (const rec of await runPair(opts, round)) {
        runs.push(rec);
        opts.log(`  ${formatRow(rec)}`);
        for (const w of rec.warnings) opts.log(`  ! ${w}`);
      }
      if (opts.pauseS > 0) await new Promise((r) => setTimeout(r, opts.pauseS * 1000));
      continue;
    }
    const order = round % 2 === 1 ? (['floor', 'target'] as const) : (['target', 'floor'] as const);
    for (const which of order) {
      opts.log(`round ${round}/${opts.rounds}: ${which} (${opts.calls} calls x ${opts.durationS} s, ${opts.style}) ...`);
      const rec = await runOne(opts, which, round);
      runs.push(rec);
      opts.log(`  ${formatRow(rec)}`);
      for (const w of rec.warnings) opts.log(`  ! ${w}`);
      if (opts.pauseS > 0) await new Promise((r) => setTimeout(r, opts.pauseS * 1000));
    }
  }
  const floorRuns = runs.filter((r) => r.server === 'floor');
  const targetRuns = runs.filter((r) => r.server === 'target');
  const floor = summarize(floorRuns, 'floor');
  const target = summarize(targetRuns, opts.targetName);
  const ratioPerRound = targetRuns.map((t, i) => r3(t.cpuSecPerCallMinute / (floorRuns[i]?.cpuSecPerCallMinute ?? NaN)));
  const { log: _log, ...rest } = opts;
  const cpuList = cpus();
  return {
    startedAt,
    host: { cpus: cpuList.length, model: cpuList[0]?.model ?? 'unknown', node: process.version },
    options: rest,
    runs,
    summary: {
      floor,
      target,
      ratio: r3(target.cpuSecPerCallMinute / floor.cpuSecPerCallMinute),
      ratioPerRound,
      ok: runs.every((r) => r.load.ok),
    },
  };
}

const HEADER =
  'server        round  win s  cpu-s/call-min  cpu %   rss MB idle/end/max   rtt ms p50/p99/max     lost  corrupt  unexpected  silence  lg cpu %  lg lag p99  core busy %';

function formatRow(r: RunRecord): string {
  const f = r.load.frames;
  return [
    r.name.padEnd(12).slice(0, 12),
    String(r.round).padStart(6),
    r.windowS.toFixed(1).padStart(6),
    r.cpuSecPerCallMinute.toFixed(4).padStart(15),
    r.serverCpuPercent.toFixed(1).padStart(6),
    `${r.rssMB.idle.toFixed(0)}/${r.rssMB.end.toFixed(0)}/${r.rssMB.max.toFixed(0)}`.padStart(21),
    (r.load.play !== null
      ? `gap ${r.load.play.interArrivalMs.p50.toFixed(2)}/${r.load.play.interArrivalMs.p99.toFixed(2)}/${r.load.play.interArrivalMs.max.toFixed(1)}`
      : `${r.load.rttMs.p50.toFixed(2)}/${r.load.rttMs.p99.toFixed(2)}/${r.load.rttMs.max.toFixed(1)}`
    ).padStart(21),
    String(f.lost).padStart(7),
    String(f.corrupted).padStart(8),
    String(f.unexpected).padStart(11),
    String(f.silence).padStart(8),
    r.loadgenCpuPercent.toFixed(1).padStart(9),
    r.load.sendLagMs.p99.toFixed(2).padStart(11),
    r.coreBusyPercent
      .map((x) => x.toFixed(0))
      .join('/')
      .padStart(12),
  ].join(' ');
}

/** The arguments of the benches that compare two servers under one echo load (gateway-compare, monitor-compare). */
export const SIDE_BY_SIDE_ARGS = {
  calls: { type: 'string', default: '200' },
  duration: { type: 'string', default: '20' },
  rounds: { type: 'string', default: '2' },
  'no-pin': { type: 'boolean', default: false },
  together: { type: 'boolean', default: false },
  out: { type: 'string' },
} as const;

/** {@link compare}'s options for those arguments: an echo load, the two servers, and anything else `extra` sets. */
export function sideBySide(
  args: { calls: string; duration: string; rounds: string; 'no-pin': boolean; together: boolean },
  servers: Pick<CompareOptions, 'floor' | 'target' | 'targetName'> & Partial<CompareOptions>,
): CompareOptions {
  return {
    mode: 'echo',
    calls: Number(args.calls),
    durationS: Number(args.duration),
    graceMs: 1000,
    rounds: Number(args.rounds),
    style: 'normal',
    group: 2,
    pin: !args['no-pin'],
    together: args.together,
    pauseS: 1,
    log: (l) => process.stderr.write(l + '\n'),
    ...servers,
  };
}

export function formatCompare(c: CompareResult): string {
  const s = c.summary;
  const lines = [
    `${c.options.mode}-compare  ${c.options.calls} calls x ${c.options.durationS} s, ${c.options.style}, ${c.options.rounds} round(s), ` +
      `pinning ${c.runs[0]?.pinned.server ? 'server cpu0 / loadgen cpu1' : 'off'}, ${c.host.cpus} cpus, node ${c.host.node}`,
    HEADER,
    ...c.runs.map(formatRow),
    '',
    ...[s.floor, s.target].map(
      (x) =>
        `${x.name.padEnd(7)} ${x.cpuSecPerCallMinute.toFixed(4)} cpu-s/call-min (${x.cpuPercent} % of a core), rss max ${x.rssMaxMB} MB, ` +
        (x.gapMs !== null
          ? `gap p50 ${x.gapMs.p50} p99 ${x.gapMs.p99} max ${x.gapMs.max} ms, frame |drift| p99 ${x.frameDriftP99Ms} ms, end drift max ${x.driftMaxAbsMs} ms, bursts ${x.burstPercent} %`
          : `rtt p50 ${x.rttMs.p50} p99 ${x.rttMs.p99} max ${x.rttMs.max} ms, lost ${x.frames.lost}`) +
        (x.wakeupsPerSec !== null ? `, ${x.wakeupsPerSec} wake-ups/s, ${x.syscallsPerFrame} syscalls/frame` : ''),
    ),
    `ratio ${s.target.name}/floor = ${s.ratio.toFixed(2)}  (per round: ${s.ratioPerRound.map((x) => x.toFixed(2)).join(', ')})`,
    s.ok ? 'all runs OK (no loss, corruption or unexpected frames)' : 'PROBLEMS: see warnings above / runs[].warnings in the JSON',
  ];
  return lines.join('\n');
}

const USAGE = `usage: node build/bench/echo-compare.js [options]
  --mode echo|play    echo (default): verify echoes; play: muted callers hear a looped tone,
                      pacing measured (floor: bench/floor-play, target: audiosocket play)
  --target "CMD"      target server command, {port} and {wav} are replaced (default: ${DEFAULT_TARGET})
  --name NAME         label for the target (default "target")
  --floor "CMD"       floor command (default: the bench's floor-echo)
  --calls N           concurrent calls (default 1000)
  --duration S        steady-state seconds per run (default 30)
  --quick             100 calls x 5 s
  --rounds R          floor/target pairs, in ABBA order (default 2: floor, target, target, floor)
  --ramp S            ramp-up seconds (default 2 ms per call)
  --grace MS          wait for late echoes (default 1000)
  --split | --coalesce [--group N]   send style (default normal)
  --no-pin            do not use taskset (server cpu0, load generator cpu1)
  --together          floor and target at the same time, both on cpu0 (each its own load
                      generator on cpu1): for differences of a few %, while both fit one core
  --audio-delay MS    each call starts its audio MS after its UUID (keep-alive before it); the
                      window starts once every call sends audio (default 0)
  --pause S           pause between runs (default 1)
  --out FILE          write the full JSON result to FILE`;

export async function main(argv: string[] = process.argv.slice(2)): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      mode: { type: 'string', default: 'echo' },
      target: { type: 'string' },
      name: { type: 'string', default: 'target' },
      floor: { type: 'string' },
      calls: { type: 'string' },
      duration: { type: 'string' },
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string', default: '2' },
      ramp: { type: 'string' },
      grace: { type: 'string', default: '1000' },
      split: { type: 'boolean', default: false },
      coalesce: { type: 'boolean', default: false },
      group: { type: 'string', default: '2' },
      'no-pin': { type: 'boolean', default: false },
      together: { type: 'boolean', default: false },
      pause: { type: 'string', default: '1' },
      'audio-delay': { type: 'string', default: '0' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const num = (s: string, name: string, min: number, max: number): number => {
    const n = Number(s);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be a number in [${min}, ${max}]`);
    return n;
  };
  if (values.split && values.coalesce) throw new Error('--split and --coalesce are exclusive');
  if (values.mode !== 'echo' && values.mode !== 'play') throw new Error('--mode must be echo or play');
  const play = values.mode === 'play';
  if (play) {
    const dir = mkdtempSync(join(tmpdir(), 'as-play-compare-'));
    promptWav = join(dir, 'tone.wav');
    writeToneWav(promptWav, 440);
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  const opts: CompareOptions = {
    mode: play ? 'play' : 'echo',
    target: values.target ?? (play ? DEFAULT_PLAY_TARGET : DEFAULT_TARGET),
    floor: values.floor ?? (play ? DEFAULT_PLAY_FLOOR : DEFAULT_FLOOR),
    targetName: values.name,
    calls: num(values.calls ?? (values.quick ? '100' : '1000'), 'calls', 1, 20000),
    durationS: num(values.duration ?? (values.quick ? '5' : '30'), 'duration', 1, 600),
    graceMs: num(values.grace, 'grace', 0, 10000),
    rounds: num(values.rounds, 'rounds', 1, 10),
    style: values.split ? 'split' : values.coalesce ? 'coalesce' : 'normal',
    group: num(values.group, 'group', 1, 50),
    pin: !values['no-pin'],
    together: values.together,
    pauseS: num(values.pause, 'pause', 0, 60),
    log: (l) => process.stderr.write(l + '\n'),
  };
  if (values.ramp !== undefined) opts.rampS = num(values.ramp, 'ramp', 0, 600);
  const audioDelayMs = num(values['audio-delay'], 'audio-delay', 0, 60000);
  if (audioDelayMs > 0) opts.audioDelayMs = audioDelayMs;
  const result = await compare(opts);
  process.stdout.write(formatCompare(result) + '\n');
  if (values.out !== undefined) {
    writeFileSync(values.out, JSON.stringify(result, null, 2) + '\n');
    process.stderr.write(`wrote ${values.out}\n`);
  }
  return result.summary.ok ? 0 : 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`echo-compare: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(2);
    },
  );
}

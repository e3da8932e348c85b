/**
 * Process helpers for the benchmarks (Linux): spawn a server, wait until it listens, sample its
 * CPU time and RSS from /proc, pin it to a core with taskset, stop it. Everything is bounded.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';

let clkTck: number | undefined;

/** Clock ticks per second used by /proc/PID/stat (`getconf CLK_TCK`, usually 100). */
export function clockTicks(): number {
  if (clkTck === undefined) {
    try {
      const v = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 2000 }).trim());
      clkTck = Number.isInteger(v) && v > 0 ? v : 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

let tasksetOk: boolean | undefined;

/** True when `taskset` runs here. */
export function hasTaskset(): boolean {
  if (tasksetOk === undefined) {
    try {
      execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore', timeout: 2000 });
      tasksetOk = true;
    } catch {
      tasksetOk = false;
    }
  }
  return tasksetOk;
}

/** Pin an already running process (e.g. this one) to one core; false when not possible. */
export function pinPid(pid: number, core: number): boolean {
  if (!hasTaskset()) return false;
  try {
    execFileSync('taskset', ['-a', '-pc', String(core), String(pid)], { stdio: 'ignore', timeout: 2000 });
    return true;
  } catch {
    return false;
  }
}

/** utime + stime of one process (all its threads), in clock ticks; null if it is gone. */
export function readCpuTicks(pid: number): number | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // Fields after the command name, which is in parentheses and may itself contain spaces.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime is field 14, stime field 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) ? utime + stime : null;
}

/** Resident set size in kB (VmRSS); null if the process is gone. */
export function readRssKB(pid: number): number | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
  return m ? Number(m[1]) : null;
}

/** pid and all its live descendants (via /proc/PID/task/TID/children), bounded. */
export function processTree(pid: number): number[] {
  const out: number[] = [];
  const todo = [pid];
  while (todo.length > 0 && out.length < 256) {
    const p = todo.pop()!;
    out.push(p);
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      try {
        for (const c of readFileSync(`/proc/${p}/task/${tid}/children`, 'utf8').split(' ')) {
          const n = Number(c);
          if (c.trim() !== '' && Number.isInteger(n)) todo.push(n);
        }
      } catch {
        /* no children file (old kernel) or thread gone */
      }
    }
  }
  return out;
}

export interface ProcSample {
  /** performance.now() in ms when sampled. */
  t: number;
  /** CPU seconds (user + system) of the process tree so far. */
  cpuSec: number;
  /** Summed VmRSS of the process tree, MB. */
  rssMB: number;
}

/** One sample of a process tree; null if the root is gone. */
export function sampleTree(pid: number): ProcSample | null {
  const t = performance.now();
  let ticks = 0;
  let rssKB = 0;
  let any = false;
  for (const p of processTree(pid)) {
    const c = readCpuTicks(p);
    const r = readRssKB(p);
    if (c === null) continue;
    any = true;
    ticks += c;
    rssKB += r ?? 0;
  }
  if (!any) return null;
  return { t, cpuSec: ticks / clockTicks(), rssMB: Math.round(rssKB / 102.4) / 10 };
}

export interface SpawnOptions {
  /** Command and arguments (no shell). */
  argv: string[];
  /** Port the server should listen on: used to probe readiness when no "listening" line shows up. */
  port?: number;
  host?: string;
  /** Pin to this core with `taskset -c` when available. */
  core?: number;
  /** Give up after this long (default 10 s). */
  readyTimeoutMs?: number;
  /** A stdout/stderr line matching this means ready (default /listening/i). */
  readyPattern?: RegExp;
  env?: NodeJS.ProcessEnv;
}

export interface Spawned {
  pid: number;
  child: ChildProcess;
  /** True when the command runs under taskset. */
  pinned: boolean;
  /** The first line that matched the ready pattern ('' when readiness came from a port probe). */
  readyLine: string;
  sample(): ProcSample | null;
  /** Last lines the process printed (for error messages). */
  output(): string;
  /** SIGTERM, then SIGKILL after graceMs (default 2000). Resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
  readonly exited: boolean;
}

/** Spawn a command and wait until it listens. Rejects (after killing it) on exit or timeout. */
export function spawnServer(opts: SpawnOptions): Promise<Spawned> {
  const [cmd0, ...args0] = opts.argv;
  if (cmd0 === undefined) return Promise.reject(new Error('empty command'));
  const pinned = opts.core !== undefined && hasTaskset();
  const [cmd, args] = pinned ? ['taskset', ['-c', String(opts.core), cmd0, ...args0]] : [cmd0, args0];
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
  const lines: string[] = [];
  let exited = false;
  const exitP = new Promise<void>((res) => {
    child.once('exit', () => {
      exited = true;
      res();
    });
    child.once('error', () => {
      exited = true;
      res();
    });
  });
  const pattern = opts.readyPattern ?? /listening/i;
  const host = opts.host ?? '127.0.0.1';
  const timeoutMs = opts.readyTimeoutMs ?? 10000;

  const handle: Spawned = {
    pid: child.pid ?? -1,
    child,
    pinned,
    readyLine: '',
    sample: () => (child.pid === undefined || exited ? null : sampleTree(child.pid)),
    output: () => lines.join('\n'),
    stop: async (graceMs = 2000) => {
      if (exited) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exitP;
      clearTimeout(t);
    },
    get exited() {
      return exited;
    },
  };

  return new Promise<Spawned>((resolve, reject) => {
    let settled = false;
    let probeTimer: NodeJS.Timeout | null = null;
    const finish = (err: Error | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      if (probeTimer !== null) clearTimeout(probeTimer);
      if (err === null) resolve(handle);
      else void handle.stop(500).then(() => reject(err));
    };
    const onLine = (line: string): void => {
      lines.push(line);
      if (lines.length > 40) lines.shift();
      if (!settled && pattern.test(line)) {
        handle.readyLine = line;
        finish(null);
      }
    };
    for (const stream of [child.stdout!, child.stderr!]) {
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (d: string) => {
        buf += d;
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          onLine(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
        if (buf.length > 4096) buf = buf.slice(-4096);
      });
    }
    const deadline = setTimeout(
      () => finish(new Error(`server not ready after ${timeoutMs} ms: ${opts.argv.join(' ')}\n${handle.output()}`)),
      timeoutMs,
    );
    void exitP.then(() =>
      finish(new Error(`server exited before listening (code ${child.exitCode}): ${opts.argv.join(' ')}\n${handle.output()}`)),
    );
    // Fallback readiness: the port accepts (probing only after 1 s, so a "listening" line wins).
    if (opts.port !== undefined) {
      const port = opts.port;
      const probe = (): void => {
        probeTimer = null;
        if (settled) return;
        const s = net.connect({ host, port });
        s.once('connect', () => {
          s.destroy();
          finish(null);
        });
        s.once('error', () => {
          s.destroy();
          if (!settled) probeTimer = setTimeout(probe, 200);
        });
      };
      probeTimer = setTimeout(probe, 1000);
    }
  });
}

/** A TCP port that was free on host a moment ago (bind to 0, read it, close). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen({ host, port: 0 }, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Split a command line into argv: whitespace-separated, '...' and "..." group words. */
export function splitCommand(cmd: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|([^\s"']+)/g;
  let m: RegExpExecArray | null;
  let cur = '';
  let last = -1;
  while ((m = re.exec(cmd)) !== null) {
    const word = m[1] ?? m[2] ?? m[3] ?? '';
    if (last === m.index && out.length > 0) {
      cur = out.pop()! + word; // adjacent pieces like --x="a b"
    } else cur = word;
    out.push(cur);
    last = re.lastIndex;
  }
  return out;
}

/** Busy and total jiffies of each core from /proc/stat (busy includes irq/softirq/steal). */
export function readCoreTicks(): Array<{ busy: number; total: number }> {
  let text: string;
  try {
    text = readFileSync('/proc/stat', 'utf8');
  } catch {
    return [];
  }
  const out: Array<{ busy: number; total: number }> = [];
  for (const line of text.split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    // user nice system idle iowait irq softirq steal (guest time is already inside user)
    const f = m[2]!.trim().split(/\s+/).map(Number);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
    const busy = user + nice + system + irq + softirq + steal;
    out[Number(m[1])] = { busy, total: busy + idle + iowait };
  }
  return out;
}

/** Busy percent of each core between two readCoreTicks() snapshots. */
export function coreBusyPercent(a: Array<{ busy: number; total: number }>, b: Array<{ busy: number; total: number }>): number[] {
  return b.map((y, i) => {
    const x = a[i];
    if (x === undefined || y.total <= x.total) return 0;
    return Math.round(((y.busy - x.busy) / (y.total - x.total)) * 1000) / 10;
  });
}

/** System calls and event-loop wake-ups (`epoll_wait`/`epoll_pwait` calls) counted over a window. */
export interface SyscallCount {
  syscalls: number;
  wakeups: number;
}

/**
 * Counts the system calls of a process tree from now until `stop()`, with `perf stat` on the
 * kernel's syscall tracepoints (counting only: a few % of overhead, the same for every server
 * measured). `null` from `stop()` when perf is missing or not allowed here.
 */
export function countSyscalls(pid: number): { stop(): Promise<SyscallCount | null> } {
  const events = ['raw_syscalls:sys_enter', 'syscalls:sys_enter_epoll_wait', 'syscalls:sys_enter_epoll_pwait'];
  let child: ChildProcess;
  try {
    child = spawn('perf', ['stat', '-x,', '-e', events.join(','), '-p', processTree(pid).join(',')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  } catch {
    return { stop: () => Promise.resolve(null) };
  }
  let text = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => (text += d));
  const exited = new Promise<void>((resolve) => {
    child.once('error', () => resolve());
    child.once('exit', () => resolve());
  });
  return {
    async stop() {
      child.kill('SIGINT');
      const killer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(killer);
      const counts = new Map<string, number>();
      for (const line of text.split('\n')) {
        const [value, , event] = line.split(',');
        if (event !== undefined && value !== undefined && /^\d+$/.test(value)) counts.set(event, Number(value));
      }
      const syscalls = counts.get(events[0]!);
      if (syscalls === undefined) return null;
      return { syscalls, wakeups: (counts.get(events[1]!) ?? 0) + (counts.get(events[2]!) ?? 0) };
    },
  };
}

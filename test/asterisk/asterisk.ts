/**
 * One private Asterisk for a test run: configs rendered into a temporary directory, an explicit
 * module list, nothing listening on the network, started in the foreground with its own control
 * socket, stopped and removed afterwards (also on failure and on Ctrl-C).
 *
 * Not a test file: `npm test` never loads it. Used by `npm run test:asterisk` (see main.ts).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  existsSync,
  fstatSync,
  mkdtempSync,
  mkdirSync,
  openSync,
  readSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  readFileSync,
  readdirSync,
  readlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';

/** Modules loaded explicitly (`autoload = no`). Everything a scenario needs, nothing that listens. */
export const CORE_MODULES = [
  // dialplan, `channel originate` and the applications the scenarios use
  'pbx_config.so',
  'res_clioriginate.so',
  'app_dial.so',
  'app_senddtmf.so',
  'app_playtones.so',
  'app_mixmonitor.so',
  'app_verbose.so',
  'app_exec.so',
  'func_cut.so',
  'func_logic.so',
  'func_uuid.so',
  'func_channel.so',
  'func_strings.so',
  // bridging (Dial) and timing
  'bridge_simple.so',
  'bridge_native_rtp.so',
  'res_timing_timerfd.so',
  // codecs: u-law legs and slin16 <-> slin
  'codec_ulaw.so',
  'codec_alaw.so',
  'codec_resample.so',
  'format_wav.so',
  // AudioSocket itself
  'res_audiosocket.so',
  'app_audiosocket.so',
  'chan_audiosocket.so',
  // the simulated phone's RTP leg (UnicastRTP/...)
  'res_rtp_asterisk.so',
  'res_rtp_multicast.so',
  'chan_rtp.so',
];

/** chan_websocket and what it needs (res_websocket_client fails to load without res_sorcery_config). */
export const WEBSOCKET_MODULES = [
  'res_sorcery_config.so',
  'res_sorcery_memory.so',
  'res_http_websocket.so',
  'res_websocket_client.so',
  'chan_websocket.so',
];

export interface WebsocketClientOptions {
  /** e.g. `ws://127.0.0.1:PORT/media` */
  uri: string;
  protocols?: string;
  connectionType?: 'per_call_config' | 'persistent';
  /** extra `key = value` lines */
  extra?: Record<string, string>;
}

/** A `websocket_client.conf` section (for chan_websocket scenarios: `WebSocket/<name>/c(slin16)`). */
export function renderWebsocketClient(name: string, o: WebsocketClientOptions): string {
  const lines = [
    `[${name}]`,
    'type = websocket_client',
    `connection_type = ${o.connectionType ?? 'per_call_config'}`,
    `uri = ${o.uri}`,
    `protocols = ${o.protocols ?? 'media'}`,
    ...Object.entries(o.extra ?? {}).map(([k, v]) => `${k} = ${v}`),
  ];
  return `${lines.join('\n')}\n`;
}

export interface AsteriskOptions {
  /** path of the `asterisk` binary (from ASTERISK_BIN) */
  bin: string;
  /** also load chan_websocket and its dependencies, with these websocket_client.conf sections */
  websocket?: { clients?: Record<string, WebsocketClientOptions>; controlFormat?: 'json' | 'plain-text' };
  /** extra modules to load */
  modules?: string[];
  /** extra dialplan appended to extensions.conf */
  dialplan?: string;
}

/** A log line of the private Asterisk (from its log file), with the time the harness read it. */
export interface LogLine {
  text: string;
  at: number;
}

/**
 * The dialplan every scenario shares. The extension carries the parameters, `*`-separated, so a
 * scenario never has to reload the dialplan:
 *   as-app:  PORT*HEX32          Answer(), AudioSocket(uuid, 127.0.0.1:PORT), then logs the return
 *   as-dial: PORT*HEX32*CODEC    Dial(AudioSocket/127.0.0.1:PORT/uuid[/c(CODEC)],,g); CODEC `none`: no c()
 * HEX32 is the UUID without dashes (dashes are not usable in extensions); the dialplan re-inserts them.
 */
export const DIALPLAN = `
[general]
static = yes
writeprotect = yes

[globals]

[as-app]
exten => _X.,1,Set(PORT=\${CUT(EXTEN,*,1)})
 same => n,Set(H=\${CUT(EXTEN,*,2)})
 same => n,Set(ID=\${H:0:8}-\${H:8:4}-\${H:12:4}-\${H:16:4}-\${H:20:12})
 same => n,Answer()
 same => n,Log(NOTICE,TEST app-start \${ID} \${CHANNEL})
 same => n,AudioSocket(\${ID},127.0.0.1:\${PORT})
 same => n,Log(NOTICE,TEST app-return \${ID})
 same => n,Hangup()

[as-dial]
exten => _X.,1,Set(PORT=\${CUT(EXTEN,*,1)})
 same => n,Set(H=\${CUT(EXTEN,*,2)})
 same => n,Set(ID=\${H:0:8}-\${H:8:4}-\${H:12:4}-\${H:16:4}-\${H:20:12})
 same => n,Set(CODEC=\${CUT(EXTEN,*,3)})
 same => n,Log(NOTICE,TEST dial-start \${ID} \${CHANNEL} \${CODEC})
 same => n,GotoIf($["\${CODEC}" = "none"]?noc)
 same => n,Dial(AudioSocket/127.0.0.1:\${PORT}/\${ID}/c(\${CODEC}),,g)
 same => n,Goto(done)
 same => n(noc),Dial(AudioSocket/127.0.0.1:\${PORT}/\${ID},,g)
 same => n(done),Log(NOTICE,TEST dial-return \${ID} \${DIALSTATUS})
 same => n,Hangup()

; the caller half of a Local pair that presses keys: wait a second, send every DTMF digit, wait
[src-dtmf]
exten => s,1,Wait(1)
 same => n,SendDTMF(0123456789*#ABCD,150,80)
 same => n,Log(NOTICE,TEST dtmf-sent \${CHANNEL})
 same => n,Wait(1)
 same => n,Hangup()
`;

export class PrivateAsterisk {
  readonly bin: string;
  readonly prefix: string;
  readonly modDir: string;
  readonly docDir: string;
  readonly dir: string;
  readonly conf: string;
  readonly logFile: string;
  readonly log: LogLine[] = [];
  /** stdout/stderr of the foreground process (last lines, for error messages) */
  readonly console: string[] = [];
  #child: ChildProcess | undefined;
  #exited: Promise<unknown> | undefined;
  #logOffset = 0;
  #logTimer: NodeJS.Timeout | undefined;
  #logPartial = '';
  #waiters = new Set<() => void>();
  #stopped = false;

  constructor(readonly options: AsteriskOptions) {
    this.bin = path.resolve(options.bin);
    this.prefix = path.dirname(path.dirname(this.bin));
    this.modDir = process.env.ASTERISK_MODDIR ?? path.join(this.prefix, 'lib/asterisk/modules');
    this.docDir = process.env.ASTERISK_DOCDIR ?? path.join(this.prefix, 'var/lib/asterisk/documentation');
    for (const [what, p] of [
      ['ASTERISK_BIN', this.bin],
      ['module directory (ASTERISK_MODDIR)', this.modDir],
      ['documentation directory (ASTERISK_DOCDIR)', this.docDir],
    ] as const) {
      if (!existsSync(p)) throw new Error(`${what} not found: ${p}`);
    }
    // Short path: the control socket lives in it and unix socket paths are limited to 107 bytes.
    this.dir = mkdtempSync(path.join(tmpdir(), 'as-ast-'));
    this.conf = path.join(this.dir, 'etc', 'asterisk.conf');
    this.logFile = path.join(this.dir, 'log', 'messages.log');
    this.#render();
  }

  #render(): void {
    const d = (name: string): string => {
      const p = path.join(this.dir, name);
      mkdirSync(p, { recursive: true });
      return p;
    };
    const etc = d('etc');
    const data = d('data');
    symlinkSync(this.docDir, path.join(data, 'documentation'));
    const w = (name: string, text: string): void => writeFileSync(path.join(etc, name), text);
    w(
      'asterisk.conf',
      `[directories]
astcachedir => ${d('cache')}
astetcdir => ${etc}
astmoddir => ${this.modDir}
astvarlibdir => ${d('varlib')}
astdbdir => ${d('db')}
astkeydir => ${d('keys')}
astdatadir => ${data}
astagidir => ${d('agi')}
astspooldir => ${d('spool')}
astrundir => ${d('run')}
astlogdir => ${d('log')}
astsbindir => ${path.dirname(this.bin)}

[options]
astctlpermissions = 0600
astctl = asterisk.ctl
verbose = 0
debug = 0
nocolor = yes
hideconnect = yes
transmit_silence = no
documentation_language = en_US
`,
    );
    const ws = this.options.websocket;
    const modules = [...CORE_MODULES, ...(ws ? WEBSOCKET_MODULES : []), ...(this.options.modules ?? [])];
    w('modules.conf', `[modules]\nautoload = no\n${modules.map((m) => `load = ${m}`).join('\n')}\n`);
    w('logger.conf', `[general]\ndateformat = %F %T.%3q\n\n[logfiles]\nmessages.log => notice,warning,error\nconsole => error\n`);
    w('extensions.conf', DIALPLAN + (this.options.dialplan ?? ''));
    // RTP only for UnicastRTP legs towards 127.0.0.1 (chan_rtp binds to the local address that reaches
    // the destination); no ICE/STUN.
    w('rtp.conf', `[general]\nrtpstart = 20000\nrtpend = 29999\nstrictrtp = no\nicesupport = no\n`);
    // Explicitly off: HTTP (res_http_websocket needs the core HTTP code, not a listener).
    w('http.conf', `[general]\nenabled = no\n`);
    w('cdr.conf', `[general]\nenable = no\n`);
    w('cel.conf', `[general]\nenable = no\n`);
    // AMI off, and the configs some core parts read (absent = start-up errors in the log)
    w('manager.conf', `[general]\nenabled = no\n`);
    for (const empty of ['features.conf', 'udptl.conf', 'ccss.conf']) w(empty, '[general]\n');
    w('acl.conf', '');
    w(
      'indications.conf',
      `[general]\ncountry = us\n\n[us]\ndescription = United States\ndial = 350+440\nring = 440+480/2000,0/4000\nbusy = 480+620/500,0/500\ncongestion = 480+620/250,0/250\n`,
    );
    if (ws) {
      w(
        'websocket_client.conf',
        Object.entries(ws.clients ?? {})
          .map(([n, o]) => renderWebsocketClient(n, o))
          .join('\n'),
      );
      // sorcery reads the one object of type global from the [global] section (chan_websocket.c load_config)
      w('chan_websocket.conf', `[global]\ntype = global\ncontrol_message_format = ${ws.controlFormat ?? 'json'}\n`);
    }
  }

  /** Adds or replaces a websocket_client.conf section and reloads res_websocket_client. */
  async addWebsocketClient(name: string, o: WebsocketClientOptions): Promise<void> {
    if (!this.options.websocket) throw new Error('start the harness with { websocket: {} } to use chan_websocket');
    this.options.websocket.clients = { ...this.options.websocket.clients, [name]: o };
    const file = path.join(this.dir, 'etc', 'websocket_client.conf');
    writeFileSync(
      file,
      Object.entries(this.options.websocket.clients)
        .map(([n, c]) => renderWebsocketClient(n, c))
        .join('\n'),
    );
    await this.rx('module reload res_websocket_client.so');
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Starts Asterisk in the foreground and waits until it is fully booted. */
  async start(timeoutMs = 30000): Promise<void> {
    const child = spawn(this.bin, ['-f', '-n', '-C', this.conf], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    this.#exited = once(child, 'exit');
    const keep = (d: Buffer): void => {
      for (const line of d.toString().split('\n')) if (line.trim()) this.console.push(line);
      if (this.console.length > 200) this.console.splice(0, this.console.length - 200);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    let exitCode: number | null | undefined;
    child.once('exit', (code) => (exitCode = code));
    this.#logTimer = setInterval(() => this.#readLog(), 10);
    const deadline = performance.now() + timeoutMs;
    const ctl = path.join(this.dir, 'run', 'asterisk.ctl');
    for (;;) {
      if (exitCode !== undefined)
        throw new Error(`Asterisk exited (${exitCode}) during start:\n${this.console.slice(-30).join('\n')}\n${this.#logTail()}`);
      if (performance.now() > deadline)
        throw new Error(`Asterisk not booted after ${timeoutMs} ms:\n${this.console.slice(-30).join('\n')}`);
      if (existsSync(ctl)) {
        const r = await this.rx('core waitfullybooted', 15000).catch(() => undefined);
        if (r !== undefined && /fully booted/i.test(r)) break;
      }
      await sleep(50);
    }
  }

  #logTail(): string {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-20).join('\n');
    } catch {
      return '';
    }
  }

  #readLog(): void {
    let fd: number;
    try {
      fd = openSync(this.logFile, 'r');
    } catch {
      return; // not created yet
    }
    try {
      const size = fstatSync(fd).size;
      if (size <= this.#logOffset) return;
      const buf = Buffer.alloc(size - this.#logOffset);
      const n = readSync(fd, buf, 0, buf.length, this.#logOffset);
      this.#logOffset += n;
      const now = performance.now();
      const lines = (this.#logPartial + buf.subarray(0, n).toString('utf8')).split('\n');
      this.#logPartial = lines.pop() ?? '';
      for (const line of lines) this.log.push({ text: line, at: now });
    } finally {
      closeSync(fd);
    }
    for (const w of [...this.#waiters]) w();
  }

  /** False once the Asterisk process has exited. */
  get running(): boolean {
    const c = this.#child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  /** Runs one CLI command through the control socket (`asterisk -C conf -rx CMD`). */
  rx(command: string, timeoutMs = 10000): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(this.bin, ['-C', this.conf, '-rx', command], { timeout: timeoutMs }, (err, stdout, stderr) => {
        if (err) reject(new Error(`asterisk -rx '${command}': ${err.message} ${stderr}`));
        else resolve(stdout);
      });
    });
  }

  /** `channel originate ...` (asynchronous in Asterisk: returns once queued). */
  async originate(args: string): Promise<void> {
    const out = await this.rx(`channel originate ${args}`);
    if (/unknown|error|unable|failed/i.test(out)) throw new Error(`originate ${args}: ${out}`);
  }

  /** Live channels: `core show channels concise`, one object per channel. */
  async channels(): Promise<Array<{ name: string; context: string; exten: string; state: string; app: string; data: string }>> {
    const out = await this.rx('core show channels concise');
    return out
      .split('\n')
      .filter((l) => l.includes('!'))
      .map((l) => {
        const f = l.split('!');
        return { name: f[0] ?? '', context: f[1] ?? '', exten: f[2] ?? '', state: f[4] ?? '', app: f[5] ?? '', data: f[6] ?? '' };
      });
  }

  async hangupChannel(name: string): Promise<void> {
    await this.rx(`channel request hangup ${name}`);
  }

  /** Log lines seen so far that match, from index `from` on. */
  logMatching(re: RegExp, from = 0): LogLine[] {
    return this.log.slice(from).filter((l) => re.test(l.text));
  }

  /** Waits (bounded) for a log line matching `re` at index >= `from`. */
  waitForLog(re: RegExp, timeoutMs: number, from = 0): Promise<LogLine> {
    return this.waitFor(() => this.logMatching(re, from)[0], timeoutMs, `log line ${re}`);
  }

  /** Waits (bounded) until `predicate` returns something other than undefined/false; re-checked on each new log line and every 20 ms. */
  async waitFor<T>(predicate: () => T | undefined | false, timeoutMs: number, what: string): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const v = predicate();
      if (v !== undefined && v !== false) return v;
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(t);
          this.#waiters.delete(done);
          resolve();
        };
        const t = setTimeout(done, Math.min(20, left));
        this.#waiters.add(done);
      });
    }
  }

  /**
   * Sockets of the Asterisk process that listen (TCP) or are bound (UDP), from /proc. Empty when
   * nothing listens on the network.
   */
  listeningSockets(): string[] {
    const pid = this.pid;
    if (pid === undefined) return [];
    const inodes = new Set<string>();
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      } catch {
        // fd closed meanwhile
      }
    }
    const found: string[] = [];
    for (const proto of ['tcp', 'tcp6', 'udp', 'udp6']) {
      let table: string;
      try {
        table = readFileSync(`/proc/net/${proto}`, 'utf8');
      } catch {
        continue;
      }
      for (const row of table.split('\n').slice(1)) {
        const f = row.trim().split(/\s+/);
        if (f.length < 10 || !inodes.has(f[9]!)) continue;
        const state = f[3];
        if (proto.startsWith('tcp') && state !== '0A') continue; // only LISTEN
        found.push(`${proto} ${f[1]}`);
      }
    }
    return found;
  }

  /** Stops Asterisk (`core stop now`, then SIGTERM, then SIGKILL) and removes the temporary directory. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#logTimer);
    const child = this.#child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = this.#exited!;
      await this.rx('core stop now', 5000).catch(() => undefined);
      const ok = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
      if (!ok) {
        child.kill('SIGTERM');
        const ok2 = await Promise.race([exited.then(() => true), sleep(3000).then(() => false)]);
        if (!ok2) {
          child.kill('SIGKILL');
          await exited;
        }
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Synchronous last-resort cleanup (process 'exit' handler): kill and remove. */
  stopSync(): void {
    clearInterval(this.#logTimer);
    const child = this.#child;
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
    this.#stopped = true;
  }

  /** `asterisk -V` */
  version(): Promise<string> {
    return new Promise((resolve, reject) => execFile(this.bin, ['-V'], (err, stdout) => (err ? reject(err) : resolve(stdout.trim()))));
  }
}

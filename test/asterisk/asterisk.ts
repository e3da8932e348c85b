/**
 * One private Asterisk for a test run: the recipe users copy (examples/asterisk, see recipe.ts)
 * rendered into a temporary directory with the harness's additions, an explicit module list,
 * nothing listening on the network, started in the foreground with its own control socket,
 * stopped and removed afterwards (also on failure and on Ctrl-C).
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
import { RECIPE_LITERALS, recipeModules, renderRecipe, type RecipeValues } from './recipe.js';

/**
 * Modules the scenarios need besides those of the recipe (examples/asterisk/modules.conf, which
 * has chan_websocket, AudioSocket, Dial, the codecs...): loaded after them (`autoload = no`).
 * Nothing that listens.
 */
export const HARNESS_MODULES = [
  // applications and functions of the harness's own dialplan
  'app_senddtmf.so',
  'app_playtones.so',
  'app_mixmonitor.so',
  'app_exec.so',
  'func_cut.so',
  'func_logic.so',
  'func_channel.so',
  'func_strings.so',
  // the simulated phone's RTP leg (UnicastRTP/...; chan_rtp needs res_rtp_multicast)
  'res_rtp_asterisk.so',
  'res_rtp_multicast.so',
  'chan_rtp.so',
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
  /**
   * websocket_client.conf sections added to the recipe's [bot], and chan_websocket.conf's
   * control format (the recipe's commented `control_message_format = json`, uncommented with
   * this value; default json)
   */
  websocket?: { clients?: Record<string, WebsocketClientOptions>; controlFormat?: 'json' | 'plain-text' };
  /** extra modules to load */
  modules?: string[];
  /** extra dialplan appended to extensions.conf (after the recipe's and the harness's) */
  dialplan?: string;
}

/** A log line of the private Asterisk (from its log file), with the time the harness read it. */
export interface LogLine {
  text: string;
  at: number;
}

/**
 * The dialplan every scenario shares, appended to the recipe's extensions.conf (which has
 * [general], [globals] and [audiosocket]). The extension carries the parameters, `*`-separated, so a
 * scenario never has to reload the dialplan:
 *   as-app:  PORT*HEX32          Answer(), AudioSocket(uuid, 127.0.0.1:PORT), then logs the return
 *   as-dial: PORT*HEX32*CODEC    Dial(AudioSocket/127.0.0.1:PORT/uuid[/c(CODEC)],,g); CODEC `none`: no c()
 * HEX32 is the UUID without dashes (dashes are not usable in extensions); the dialplan re-inserts them.
 */
export const DIALPLAN = `
; test:asterisk: the harness's own contexts (test/asterisk/asterisk.ts)

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
  #recipe: RecipeValues;

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
    this.conf = path.join(this.dir, 'asterisk.conf');
    this.logFile = path.join(this.dir, 'log', 'messages.log');
    this.#recipe = {
      dir: this.dir,
      audiosocket: RECIPE_LITERALS.audiosocket,
      websocket: RECIPE_LITERALS.websocketUri.replace(/^ws:\/\/|\/media$/g, ''),
      controlFormat: options.websocket?.controlFormat ?? 'json',
    };
    try {
      this.#render();
    } catch (e) {
      // e.g. a recipe literal that is gone (recipe.ts): nothing started, nothing to leave behind
      rmSync(this.dir, { recursive: true, force: true });
      throw e;
    }
  }

  #render(): void {
    const d = (name: string): string => {
      const p = path.join(this.dir, name);
      mkdirSync(p, { recursive: true });
      return p;
    };
    // The recipe's asterisk.conf puts etc and the db in the directory itself and run, log, spool
    // and cache below it; the harness adds the directories a run must not share with an installed
    // Asterisk (and the build's modules, wherever ASTERISK_BIN is).
    for (const sub of ['run', 'log', 'spool', 'cache']) d(sub);
    const data = d('data');
    symlinkSync(this.docDir, path.join(data, 'documentation'));
    const w = (name: string, text: string): void => writeFileSync(path.join(this.dir, name), text);
    const insertAfter = (text: string, header: string, lines: string): string => {
      if (!text.includes(`${header}\n`)) throw new Error(`examples/asterisk/asterisk.conf has no ${header} section`);
      return text.replace(`${header}\n`, `${header}\n; test:asterisk\n${lines}`);
    };
    let conf = renderRecipe('asterisk.conf', this.#recipe);
    conf = insertAfter(
      conf,
      '[directories]',
      `astmoddir => ${this.modDir}
astvarlibdir => ${d('varlib')}
astkeydir => ${d('keys')}
astdatadir => ${data}
astagidir => ${d('agi')}
astsbindir => ${path.dirname(this.bin)}
`,
    );
    conf = insertAfter(
      conf,
      '[options]',
      `astctlpermissions = 0600
verbose = 0
debug = 0
nocolor = yes
hideconnect = yes
transmit_silence = no
documentation_language = en_US
`,
    );
    w('asterisk.conf', conf);
    const fromRecipe = new Set(recipeModules());
    const extra = [...HARNESS_MODULES, ...(this.options.modules ?? [])].filter((m) => !fromRecipe.has(m));
    w(
      'modules.conf',
      `${renderRecipe('modules.conf', this.#recipe)}\n; test:asterisk: what its scenarios need besides the recipe\n${extra.map((m) => `load = ${m}`).join('\n')}\n`,
    );
    w('logger.conf', renderRecipe('logger.conf', this.#recipe));
    this.#renderDialplan();
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
    this.#renderWebsocketClients();
    w('chan_websocket.conf', renderRecipe('chan_websocket.conf', this.#recipe));
  }

  /** extensions.conf: the recipe's, then the harness's contexts, then the run's extra dialplan. */
  #renderDialplan(): void {
    writeFileSync(
      path.join(this.dir, 'extensions.conf'),
      `${renderRecipe('extensions.conf', this.#recipe)}\n${DIALPLAN}${this.options.dialplan ?? ''}`,
    );
  }

  /** websocket_client.conf: the recipe's [bot], then the sections the scenarios added. */
  #renderWebsocketClients(): void {
    const clients = Object.entries(this.options.websocket?.clients ?? {}).map(([n, o]) => renderWebsocketClient(n, o));
    writeFileSync(
      path.join(this.dir, 'websocket_client.conf'),
      [`${renderRecipe('websocket_client.conf', this.#recipe)}\n; test:asterisk: the scenarios' own sections`, ...clients].join('\n'),
    );
  }

  /** Adds or replaces a websocket_client.conf section and reloads res_websocket_client. */
  async addWebsocketClient(name: string, o: WebsocketClientOptions): Promise<void> {
    const ws = (this.options.websocket ??= {});
    ws.clients = { ...ws.clients, [name]: o };
    this.#renderWebsocketClients();
    await this.rx('module reload res_websocket_client.so');
  }

  /**
   * Points the recipe (examples/asterisk) at this run's servers: extensions.conf's AudioSocket
   * address, websocket_client.conf's [bot] (ws://, or its commented wss:// variant with `wss`).
   * Re-renders both files, reloads the dialplan and res_websocket_client, and checks that the
   * dialplan now dials `audiosocket`.
   */
  async useRecipe(v: { audiosocket: string; websocket: string; wss?: RecipeValues['wss'] }): Promise<void> {
    this.#recipe = { ...this.#recipe, audiosocket: v.audiosocket, websocket: v.websocket, wss: v.wss };
    this.#renderDialplan();
    this.#renderWebsocketClients();
    await this.rx('dialplan reload');
    await this.rx('module reload res_websocket_client.so');
    const shown = await this.rx('dialplan show 101@audiosocket');
    if (!shown.includes(v.audiosocket)) throw new Error(`after dialplan reload, 101@audiosocket does not dial ${v.audiosocket}:\n${shown}`);
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

/**
 * Runs a server command: listens, prints one line per call, shuts down gracefully on
 * SIGINT/SIGTERM (live calls get a hangup), and a second signal exits at once.
 */
import { createServer, type Call, type CallHandler, type CallEnd } from '../index.js';
import type { CommonServerArgs } from './options.js';
import { createOutput, type Output } from './output.js';

export interface RunningServer {
  output: Output;
  done: Promise<void>;
}

function peer(call: Call): string {
  return call.remoteAddress.includes(':') ? `[${call.remoteAddress}]:${call.remotePort}` : `${call.remoteAddress}:${call.remotePort}`;
}

export async function runServer(
  name: string,
  args: CommonServerArgs,
  handler: CallHandler,
  options: { callLines?: boolean } = {},
): Promise<RunningServer> {
  const output = createOutput(args);
  const server = createServer(handler, args.server);
  if (options.callLines !== false) server.on('call', (call) => {
    output.event('call', { uuid: call.uuid, peer: peer(call) }, `call ${call.uuid} from ${peer(call)}`);
  });
  if (options.callLines !== false) server.on('callEnd', (call: Call, end: CallEnd) => {
    const s = end.stats;
    output.event(
      'callEnd',
      {
        uuid: call.uuid,
        peer: peer(call),
        durationMs: Math.round(end.durationMs),
        reason: end.reason,
        error: end.error?.message,
        messagesIn: s.messagesIn,
        messagesOut: s.messagesOut,
        dtmf: s.dtmfIn,
        droppedIn: s.droppedIn,
        droppedOut: s.droppedOut,
      },
      `end  ${call.uuid} ${peer(call)} ${(end.durationMs / 1000).toFixed(1)}s in=${s.messagesIn} out=${s.messagesOut}` +
        ` reason=${end.reason}${end.error ? ` (${end.error.message})` : ''}`,
    );
  });
  server.on('handshakeFailed', (f) => {
    const hint =
      f.reason === 'closed-before-uuid'
        ? ' (normal if a Dial was abandoned; for AudioSocket() put Answer() before it)'
        : '';
    output.event('handshakeFailed', { ...f, error: f.error?.message }, `no call from ${f.remoteAddress}:${f.remotePort}: ${f.reason}${hint}${f.error ? `: ${f.error.message}` : ''}`);
  });
  server.on('connectionRejected', (r) => {
    output.event('connectionRejected', { ...r }, `rejected ${r.remoteAddress}:${r.remotePort}: ${r.reason}`);
  });
  server.on('handlerError', (err, call) => {
    output.error(`call ${call.uuid}: ${(err as Error)?.stack ?? String(err)}`, { uuid: call.uuid });
  });

  let address;
  try {
    address = await server.listen({ host: args.host, port: args.port });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'EADDRINUSE' ? `port ${args.port} is already in use (is another audiosocket running?)` : e.message;
    output.error(`cannot listen on ${args.host}:${args.port}: ${why}`);
    process.exitCode = 1;
    return { output, done: Promise.resolve() };
  }
  const shown = address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
  output.event('listening', { command: name, host: address.address, port: address.port }, `audiosocket ${name} listening on ${shown}`);

  const done = new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        output.error(`${signal} again: exiting now`);
        process.exit(130);
      }
      stopping = true;
      const live = server.calls.size;
      output.event('closing', { signal, activeCalls: live }, `${signal}: closing, hanging up ${live} call(s)`);
      void server.close().then(() => {
        output.event('closed', { totalCalls: server.stats.totalCalls }, `closed after ${server.stats.totalCalls} call(s)`);
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      });
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  return { output, done };
}

/**
 * Prometheus metrics for the CLI (`--metrics HOST:PORT`), with prom-client: the standard
 * registry also brings process CPU, memory and event-loop lag.
 *
 * Names follow the Prometheus conventions (and pass `promtool check metrics`): counters end in
 * `_total`, a unit comes last before it (`_bytes_total`, `_seconds`), gauges have no `_total`.
 * `audiosocket_send_lateness_seconds` observes every frame a call sends (its `sent` event's
 * lateness against the call's timeline, docs/pacing.md).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AudioSocketServer, Call, CallEnd } from '../index.js';
import { version } from './version.js';
import { droppedSlotsOf, lateSlotsOf } from './stats.js';

export interface MetricsEndpoint {
  address: AddressInfo;
  close(): Promise<void>;
}

/** Buckets of `audiosocket_call_duration_seconds`: from a refused call to a long conversation. */
export const CALL_DURATION_BUCKETS = [0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

/** Buckets of `audiosocket_send_lateness_seconds`: on time, under a frame, a few frames, a stall. */
export const SEND_LATENESS_BUCKETS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.04, 0.1, 0.25, 1];

/** Builds the registry for `server`; attach it before `listen()` so no event is missed. */
export async function createMetricsRegistry(server: AudioSocketServer): Promise<import('prom-client').Registry> {
  const client = await import('prom-client');
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  const registers = [registry];
  // prom-client also serves the sums of its per-type gauges nodejs_active_{handles,requests,
  // resources} as gauges named `..._total`, a suffix the conventions (and promtool) reserve for
  // counters. The per-type gauges carry the same numbers: drop the sums.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
    registry.removeSingleMetric(name);
  }
  const ended = {
    framesIn: 0,
    framesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    droppedIn: 0,
    droppedOut: 0,
    lateSlots: 0,
    droppedSlots: 0,
    droppedWrites: 0,
    delayedWrites: 0,
  };
  const live = (pick: (c: Call['stats']) => number): number => {
    let sum = 0;
    for (const call of server.calls) sum += pick(call.stats);
    return sum;
  };

  new client.Gauge({
    name: 'audiosocket_build_info',
    help: 'Always 1; the labels say which audiosocket and Node.js versions run',
    labelNames: ['version', 'node_version'],
    registers,
  }).set({ version: version(), node_version: process.version }, 1);

  const calls = new client.Counter({ name: 'audiosocket_calls_total', help: 'Calls accepted (UUID received) since start', registers });
  const endReasons = new client.Counter({
    name: 'audiosocket_calls_ended_total',
    help: 'Calls ended, by reason',
    labelNames: ['reason'],
    registers,
  });
  const handshakeFailures = new client.Counter({
    name: 'audiosocket_handshake_failures_total',
    help: 'Connections that ended before a call started (no UUID), by reason',
    labelNames: ['reason'],
    registers,
  });
  const rejected = new client.Counter({
    name: 'audiosocket_connections_rejected_total',
    help: 'Connections refused by admission (allow list, credentials, max calls, server closing), by listener and reason',
    labelNames: ['transport', 'reason'],
    registers,
  });
  const duration = new client.Histogram({
    name: 'audiosocket_call_duration_seconds',
    help: 'Duration of ended calls, from the UUID to the end',
    buckets: CALL_DURATION_BUCKETS,
    registers,
  });
  const lateness = new client.Histogram({
    name: 'audiosocket_send_lateness_seconds',
    help: 'How late each sent frame left against its place on the call timeline (AudioSocket; chan_websocket frames count as on time)',
    buckets: SEND_LATENESS_BUCKETS,
    registers,
  });
  // Known label values start at 0, so rate() works from the first scrape.
  for (const reason of ['closed-before-uuid', 'timeout', 'protocol-error']) handshakeFailures.inc({ reason }, 0);
  for (const reason of ['not-allowed', 'max-calls', 'server-closing']) rejected.inc({ transport: 'audiosocket', reason }, 0);
  server.on('call', (call: Call) => {
    calls.inc();
    call.on('sent', (frame) => lateness.observe(frame.latenessMs / 1000));
  });
  server.on('handshakeFailed', (f) => handshakeFailures.inc({ reason: f.reason }));
  server.on('connectionRejected', (r) => rejected.inc({ transport: r.transport, reason: r.reason }));
  server.on('callEnd', (_call: Call, end: CallEnd) => {
    const s = end.stats;
    ended.framesIn += s.audioIn;
    ended.framesOut += s.framesSent;
    ended.bytesIn += s.bytesIn;
    ended.bytesOut += s.bytesOut;
    ended.droppedIn += s.droppedIn;
    ended.droppedOut += s.droppedOut;
    ended.lateSlots += lateSlotsOf(s);
    ended.droppedSlots += droppedSlotsOf(s);
    ended.droppedWrites += s.droppedWrites;
    ended.delayedWrites += s.delayedWrites;
    endReasons.inc({ reason: end.reason });
    duration.observe(end.durationMs / 1000);
  });

  new client.Gauge({
    name: 'audiosocket_calls_active',
    help: 'Calls in progress',
    registers,
    collect() {
      this.set(server.calls.size);
    },
  });
  const counter = (name: string, help: string, key: keyof typeof ended, pick: (c: Call['stats']) => number): void => {
    // Monotonic: ended calls' totals plus live calls' running counts.
    new client.Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(ended[key] + live(pick));
      },
    });
  };
  counter('audiosocket_received_frames_total', 'Audio messages received', 'framesIn', (s) => s.audioIn);
  counter('audiosocket_sent_frames_total', 'Audio messages sent', 'framesOut', (s) => s.framesSent);
  counter('audiosocket_received_bytes_total', 'Bytes received, headers included', 'bytesIn', (s) => s.bytesIn);
  counter('audiosocket_sent_bytes_total', 'Bytes sent, headers included', 'bytesOut', (s) => s.bytesOut);
  counter(
    'audiosocket_received_frames_dropped_total',
    'Received frames dropped because a slow consumer fell behind',
    'droppedIn',
    (s) => s.droppedIn,
  );
  counter(
    'audiosocket_sent_messages_dropped_total',
    'Outbound messages dropped because the peer was not reading',
    'droppedOut',
    (s) => s.droppedOut,
  );
  counter('audiosocket_late_slots_total', 'Outbound frames sent more than half a frame late', 'lateSlots', (s) => lateSlotsOf(s));
  counter('audiosocket_dropped_slots_total', 'Outbound slots skipped after event-loop stalls', 'droppedSlots', (s) => droppedSlotsOf(s));
  counter(
    'audiosocket_dropped_writes_total',
    'Immediate writes dropped (queue over maxQueuedMs, or a play held the slots)',
    'droppedWrites',
    (s) => s.droppedWrites,
  );
  counter(
    'audiosocket_delayed_writes_total',
    'Immediate writes that waited for real time or the burst guard',
    'delayedWrites',
    (s) => s.delayedWrites,
  );
  return registry;
}

/** Serves the metrics of `server` at http://host:port/metrics. Rejects when it cannot listen. */
export async function serveMetrics(server: AudioSocketServer, host: string, port: number): Promise<MetricsEndpoint> {
  const registry = await createMetricsRegistry(server);
  const http_ = http.createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end('see /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500).end(String(err)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    http_.once('error', reject);
    http_.listen(port, host, () => resolve());
  });
  return {
    address: http_.address() as AddressInfo,
    close: () => new Promise((resolve) => http_.close(() => resolve())),
  };
}

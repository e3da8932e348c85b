/**
 * Prometheus metrics for the CLI (`--metrics HOST:PORT`), with prom-client: the standard
 * registry also brings process CPU, memory and event-loop lag for free.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AudioSocketServer, Call, CallEnd } from '../index.js';

export interface MetricsEndpoint {
  address: AddressInfo;
  close(): Promise<void>;
}

export async function serveMetrics(server: AudioSocketServer, host: string, port: number): Promise<MetricsEndpoint> {
  const client = await import('prom-client');
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  const ended = { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0, droppedIn: 0, droppedOut: 0, lateSlots: 0, droppedSlots: 0, droppedWrites: 0, delayedWrites: 0 };
  const live = (pick: (c: Call['stats']) => number): number => {
    let sum = 0;
    for (const call of server.calls) sum += pick(call.stats);
    return sum;
  };
  const endReasons = new client.Counter({ name: 'audiosocket_calls_ended_total', help: 'Calls ended, by reason', labelNames: ['reason'], registers: [registry] });
  server.on('callEnd', (_call: Call, end: CallEnd) => {
    const s = end.stats;
    ended.framesIn += s.audioIn;
    ended.framesOut += s.framesSent;
    ended.bytesIn += s.bytesIn;
    ended.bytesOut += s.bytesOut;
    ended.droppedIn += s.droppedIn;
    ended.droppedOut += s.droppedOut;
    ended.lateSlots += s.lateSlots;
    ended.droppedSlots += s.droppedSlots;
    ended.droppedWrites += s.droppedWrites;
    ended.delayedWrites += s.delayedWrites;
    endReasons.inc({ reason: end.reason });
  });
  const gauge = (name: string, help: string, collect: () => number): void => {
    new client.Gauge({ name, help, registers: [registry], collect() { this.set(collect()); } });
  };
  const counter = (name: string, help: string, key: keyof typeof ended, pick: (c: Call['stats']) => number): void => {
    // Monotonic: ended calls' totals plus live calls' running counts.
    new client.Counter({ name, help, registers: [registry], collect() { this.reset(); this.inc(ended[key] + live(pick)); } });
  };
  gauge('audiosocket_calls_active', 'Calls in progress', () => server.calls.size);
  gauge('audiosocket_calls_total', 'Calls accepted since start', () => server.stats.totalCalls);
  gauge('audiosocket_handshake_failures_total', 'Connections that closed before a UUID', () => server.stats.handshakeFailures);
  gauge('audiosocket_connections_rejected_total', 'Connections refused (allow list, maxCalls, closing)', () => server.stats.rejected);
  counter('audiosocket_frames_in_total', 'Audio messages received', 'framesIn', (s) => s.audioIn);
  counter('audiosocket_frames_out_total', 'Audio messages sent', 'framesOut', (s) => s.framesSent);
  counter('audiosocket_bytes_in_total', 'Bytes received', 'bytesIn', (s) => s.bytesIn);
  counter('audiosocket_bytes_out_total', 'Bytes sent', 'bytesOut', (s) => s.bytesOut);
  counter('audiosocket_dropped_in_total', 'Received frames dropped by slow consumers', 'droppedIn', (s) => s.droppedIn);
  counter('audiosocket_dropped_out_total', 'Outbound messages dropped because the peer was not reading', 'droppedOut', (s) => s.droppedOut);
  counter('audiosocket_late_slots_total', 'Outbound frames sent more than half a frame late', 'lateSlots', (s) => s.lateSlots);
  counter('audiosocket_dropped_slots_total', 'Outbound slots skipped after event-loop stalls', 'droppedSlots', (s) => s.droppedSlots);
  counter('audiosocket_dropped_writes_total', 'Immediate writes dropped (queue over maxQueuedMs, or a play held the slots)', 'droppedWrites', (s) => s.droppedWrites);
  counter('audiosocket_delayed_writes_total', 'Immediate writes that waited for real time or the burst guard', 'delayedWrites', (s) => s.delayedWrites);

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

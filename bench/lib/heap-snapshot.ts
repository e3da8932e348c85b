/**
 * What a process's V8 heap holds, from a heap snapshot (`--heapsnapshot-signal`), grouped by
 * what each object is (its constructor or kind): to say where per-call memory goes by subtracting
 * a snapshot taken before the calls from one taken with them.
 */
import fs from 'node:fs';

/** Count and bytes (shallow sizes) of each kind of heap object. */
export type HeapCensus = Map<string, { count: number; bytes: number }>;

interface SnapshotJson {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}

const STRING_TYPES = new Set(['string', 'concatenated string', 'sliced string']);

export function censusOf(file: string): HeapCensus {
  const json = JSON.parse(fs.readFileSync(file, 'utf8')) as SnapshotJson;
  const fields = json.snapshot.meta.node_fields;
  const typeNames = json.snapshot.meta.node_types[0];
  const [width, type, name, size] = [fields.length, fields.indexOf('type'), fields.indexOf('name'), fields.indexOf('self_size')];
  const census: HeapCensus = new Map();
  const nodes = json.nodes;
  for (let i = 0; i < nodes.length; i += width) {
    const t = typeNames[nodes[i + type]!]!;
    // Strings are grouped by kind, not by content; objects and closures by their name.
    const key = STRING_TYPES.has(t) ? t : `${t} ${json.strings[nodes[i + name]!]!.slice(0, 50)}`;
    const entry = census.get(key);
    if (entry === undefined) census.set(key, { count: 1, bytes: nodes[i + size]! });
    else {
      entry.count++;
      entry.bytes += nodes[i + size]!;
    }
  }
  return census;
}

/** `after - before` per kind, divided by `calls`, largest first; and the total bytes per call. */
export function perCall(before: HeapCensus, after: HeapCensus, calls: number): { rows: [string, number, number][]; bytes: number } {
  const rows: [string, number, number][] = [];
  let bytes = 0;
  for (const [key, a] of after) {
    const b = before.get(key) ?? { count: 0, bytes: 0 };
    bytes += a.bytes - b.bytes;
    rows.push([key, (a.count - b.count) / calls, (a.bytes - b.bytes) / calls]);
  }
  rows.sort((x, y) => y[2] - x[2]);
  return { rows, bytes: bytes / calls };
}

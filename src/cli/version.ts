/** The package version, read from package.json (two levels above dist/cli). */
import { createRequire } from 'node:module';

let cached: string | undefined;

export function version(): string {
  cached ??= (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
  return cached;
}

/**
 * `npm run bench`: the echo comparison (floor vs target, same run). Arguments are passed
 * through, e.g. `npm run bench -- --quick --target "node build/bench/floor-echo.js --port {port}"`.
 */
import { main } from './echo-compare.js';

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  },
);

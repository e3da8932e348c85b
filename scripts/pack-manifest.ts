/**
 * `npm pack` writes a tarball whose package.json has no `prepare` script; the repository's keeps it.
 *
 *   node build/scripts/pack-manifest.js strip     (prepack, after the build)
 *   node build/scripts/pack-manifest.js restore   (postpack)
 *
 * Why: `prepare` is what builds dist/ when a project installs this package from git (npm clones,
 * installs the dev dependencies and runs `prepare`, nothing else) and after `npm install` in a
 * clone. A tarball already holds dist/, and npm never runs a tarball's `prepare`; but npm 11's
 * allowScripts advisory lists `prepare` for every package that does not come from a registry, so
 * `npm install ./audiosocket-x.tgz` warned about a script it would not run. The tarball's
 * manifest therefore leaves it out.
 *
 * strip keeps the original bytes in `package.json.prepack` and restore puts them back. A pack that
 * was interrupted between the two leaves that file (and a changed package.json) behind, visible in
 * `git status`; the next strip or restore repairs it first.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PKG = `${ROOT}package.json`;
const BACKUP = `${ROOT}package.json.prepack`;

function restore(): void {
  if (existsSync(BACKUP)) renameSync(BACKUP, PKG);
}

function strip(): void {
  restore();
  const text = readFileSync(PKG, 'utf8');
  const pkg = JSON.parse(text) as { scripts?: Record<string, string> };
  if (!pkg.scripts?.prepare) return;
  writeFileSync(BACKUP, text);
  delete pkg.scripts.prepare;
  writeFileSync(PKG, `${JSON.stringify(pkg, null, 2)}\n`);
}

const command = process.argv[2];
if (command === 'strip') strip();
else if (command === 'restore') restore();
else {
  process.stderr.write('usage: node build/scripts/pack-manifest.js strip|restore\n');
  process.exit(2);
}

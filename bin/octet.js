#!/usr/bin/env node
// Launches the compiled command line (dist/, built by `npm install` through the prepare script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/cli/bin.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('octet: error: the compiled code in dist/ is missing; run `npm install` or `npm run build` in the octet folder\n');
  process.exit(1);
}
await import(entry.href);

#!/usr/bin/env node
// npm's `prepare`: compiles the TypeScript sources to dist/ after `npm install`/`npm ci` in a checkout. Skipped
// (with a note) where there is nothing to compile or no compiler: a production-only install of the dependencies
// (e.g. the bundle that ../shared/device/prepare.sh makes for the GPU machine, which carries dist/ itself).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
let tsc;
try {
  tsc = require.resolve('typescript/bin/tsc');
} catch {
  tsc = undefined;
}
if (!existsSync("tsconfig.build.json") || !existsSync("src") || !tsc) {
  console.log('ava-migrate prepare: nothing to compile here (no sources or no TypeScript); skipped');
  process.exit(0);
}
const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
process.exit(result.status ?? 1);

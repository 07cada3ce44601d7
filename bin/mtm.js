#!/usr/bin/env node
// Runs the TypeScript CLI through tsx, so there is no build step between a clone and `mtm`.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../app/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));

#!/usr/bin/env node
// The CLI runs from TypeScript sources through tsx's loader, so `npx ttt-workbench` needs no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../engine/cli.ts');
process.exitCode = await main(process.argv.slice(2));

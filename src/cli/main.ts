#!/usr/bin/env node
/** The `ringkv` executable (dist/cli/main.js): runs the dispatcher in cli.ts and exits with its code. */
import { exitError } from './args.ts';
import { main } from './cli.ts';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Servers and sockets are closed by now; a lingering handle must not keep the CLI alive.
    setTimeout(() => process.exit(code), 50).unref();
  },
  (error: unknown) => {
    process.stderr.write(`ringkv: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(exitError);
  },
);

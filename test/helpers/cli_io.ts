/** Run the command line in-process with captured output. */
import { runCli } from '../../src/cli/main.js';

export interface CliResult {
  code: number;
  stdout: string;
  /** What was written to stdout as bytes (binary outputs). */
  stdoutBytes: Uint8Array;
  stderr: string;
}

/** Run with standard input given whole, or as chunks (a generator, to feed more than fits in memory). */
export async function runOctet(argv: string[], stdin: string | (() => AsyncIterable<string>) = ''): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const bytes: Uint8Array[] = [];
  const code = await runCli(argv, {
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
    stdinChunks: typeof stdin === 'string' ? async function* () { yield stdin; } : stdin,
    writeOut: async (t) => void (typeof t === 'string' ? (stdout += t) : bytes.push(t.slice())),
  });
  return { code, stdout, stdoutBytes: new Uint8Array(Buffer.concat(bytes)), stderr };
}

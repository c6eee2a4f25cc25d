/** Run the command line in-process with captured output. */
import { runCli } from '../../src/cli/main.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run with standard input given whole, or as chunks (a generator, to feed more than fits in memory). */
export async function runOctet(argv: string[], stdin: string | (() => AsyncIterable<string>) = ''): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
    stdinChunks: typeof stdin === 'string' ? async function* () { yield stdin; } : stdin,
    writeOut: async (t) => void (stdout += t),
  });
  return { code, stdout, stderr };
}

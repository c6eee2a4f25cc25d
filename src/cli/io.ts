/** Where the command line reads and writes, so that commands can run in-process under test. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Standard input as text, a chunk at a time (never all of it at once). */
  stdinChunks(): AsyncIterable<string>;
  /** stdout for large or binary outputs: resolves once it may be written without piling up in memory. */
  writeOut(data: string | Uint8Array): Promise<void>;
}

export const processIo: CliIo = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  stdinChunks: () => {
    process.stdin.setEncoding('utf8');
    return process.stdin as AsyncIterable<string>;
  },
  writeOut: (data) =>
    new Promise<void>((resolve, reject) => {
      if (process.stdout.write(data)) resolve();
      else process.stdout.once('drain', resolve).once('error', reject);
    }),
};

/**
 * `npm run bench`: every benchmark, one JSON object per line on standard output.
 * `npm run bench -- codec` runs only the named groups.
 */
import { codecBench } from './codec_bench.js';

const groups: Record<string, () => Promise<object[]>> = {
  codec: () => codecBench(),
};

const wanted = process.argv.slice(2);
const unknown = wanted.filter((g) => !(g in groups));
if (unknown.length) {
  process.stderr.write(`unknown benchmark group ${unknown.join(', ')}; choose from ${Object.keys(groups).join(', ')}\n`);
  process.exit(1);
}
for (const name of wanted.length ? wanted : Object.keys(groups)) {
  for (const row of await groups[name]()) process.stdout.write(JSON.stringify(row) + '\n');
}

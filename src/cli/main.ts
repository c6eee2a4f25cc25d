/**
 * The `octet` command line: argument parsing and wiring. The only layer that prints.
 */
import { Command, CommanderError, Option } from 'commander';
import { OctetError } from '../errors.js';
import { ROUNDINGS } from '../formats/index.js';
import { BENCH_GROUPS, benchCommand } from './bench_command.js';
import { castCommand } from './cast_command.js';
import { formatsCommand } from './formats_command.js';
import { processIo, type CliIo } from './io.js';
import { modelsCommand, summaryCommand } from './models_command.js';
import { recipeShowCommand, recipesCommand } from './recipes_command.js';

function buildProgram(io: CliIo): Command {
  const program = new Command('octet')
    .description('Train neural networks in emulated 8-bit floating point, bit for bit, on a CPU')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError('(run octet --help for usage)');

  program
    .command('formats')
    .description('list the number formats with their bits, bias, limits and special values')
    .argument('[names...]', 'formats to show (presets, aliases or eXmY); default: every preset')
    .option('--json', 'print JSON instead of a table')
    .action((names: string[], options: { json?: boolean }) => formatsCommand(names, options, io));

  program
    .command('cast')
    .description(
      'read numbers from standard input and print, per number: the input, its code in hex and the decoded value',
    )
    .requiredOption('-f, --format <format>', 'target format (e.g. e5m2, e4m3, e6m9, fp16, bf16, e3m4)')
    .addOption(new Option('-r, --rounding <mode>', 'rounding mode').choices(ROUNDINGS).default('nearest'))
    .option('--seed <n>', 'seed of stochastic rounding (non-negative integer)', '0')
    .option('--saturate', 'send overflow and ±Inf to ±max finite instead of Inf/NaN')
    .action((options) => castCommand(options, io));

  program
    .command('models')
    .description('list the models with their default classes, input channels, input size and parameter count')
    .option('--json', 'print JSON instead of a table')
    .action((options: { json?: boolean }) => modelsCommand(options, io));

  program
    .command('summary')
    .description('one line per layer of a model: name, op, output shape, parameters, multiply-accumulates')
    .requiredOption('-m, --model <name>', 'model name (see octet models)')
    .option('--classes <n>', 'number of classes (default: the model\'s)')
    .option('--in-channels <n>', 'input channels (default: the model\'s; 1 for MNIST-style data)')
    .option('--width <n>', 'base width, for the models that have one')
    .option('--input <HxW>', 'input size, e.g. 32 or 64x128 (default: the model\'s)')
    .option('--json', 'print JSON instead of a table')
    .action((options) => summaryCommand(options, io));

  const recipes = program
    .command('recipes')
    .description('list the preset quantization recipes (formats, accumulation, gradient scaling, master weights)')
    .option('--json', 'print JSON: an array of {name, description, recipe}')
    .action((options: { json?: boolean }) => recipesCommand(options, io));
  recipes
    .command('show')
    .description('print a preset as the JSON a recipe file starts from')
    .argument('<name>', 'preset name')
    .action((name: string) => recipeShowCommand(name, io));

  program
    .command('bench')
    .description(`measure speed, with numpy/OpenBLAS and ONNX Runtime as peers where present (groups: ${BENCH_GROUPS.join(', ')})`)
    .argument('[groups...]', 'benchmark groups to run; default: all')
    .option('--json', 'one JSON object per line')
    .option('--threads <list>', 'thread counts to measure, comma-separated (default: 1 and all cores)')
    .action((groups: string[], options: { json?: boolean; threads?: string }) => benchCommand(groups, options, io));

  return program;
}

/** Run the command line; returns the exit code instead of exiting, so tests can call it. */
export async function runCli(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    if (error instanceof OctetError) {
      io.stderr(`octet: error: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

/**
 * The `octet` command line: argument parsing and wiring. The only layer that prints.
 */
import { Command, CommanderError, Option } from 'commander';
import { OctetError, SettingError } from '../errors.js';
import { ROUNDINGS } from '../formats/index.js';
import { CONV_ALGORITHMS } from '../kernels/index.js';
import { BENCH_GROUPS, benchCommand, type BenchOptions } from './bench_command.js';
import { pruneCommand } from './prune_command.js';
import { castCommand } from './cast_command.js';
import { formatsCommand } from './formats_command.js';
import { gemmCommand } from './gemm_command.js';
import { processIo, type CliIo } from './io.js';
import { modelsCommand, summaryCommand } from './models_command.js';
import { recipeShowCommand, recipesCommand } from './recipes_command.js';
import { statsCommand } from './stats_command.js';
import { SETTING_FLAGS, compareCommand, evalCommand, trainCommand } from './train_command.js';

/** --conv: how float32 3x3 convolutions run. */
function convOption(what = 'default: winograd, or OCTET_CONV'): Option {
  return new Option('--conv <algorithm>', `float32 3x3 stride-1 convolutions: winograd or the direct product (${what})`).choices(CONV_ALGORITHMS);
}

const DATA_HELP = 'data: mnist, fashion-mnist[:DIR], mnist-seg, mnist-seg-large, cifar10:DIR, cifar100:DIR, images:DIR, segmentation:DIR';

/** The options `octet train` and `octet compare` share. */
function trainingOptions(command: Command): Command {
  return runOptions(command.requiredOption('-m, --model <name>', 'model (see octet models)').requiredOption('-d, --data <spec>', DATA_HELP))
    .option('--stats-every <n>', 'numerics lab: look at every N-th step (stats.json and stats.html in the run folder; see octet stats)')
    .option('--stats-formats <list>', 'with --stats-every: candidate formats besides e5m2,e4m3,e6m9,fp16,bf16 (e.g. e3m4,e2m5)');
}

/** The settings of a training run, without model and data. */
function runOptions(command: Command): Command {
  return command
    .option('--epochs <n>', 'epochs', '1')
    .option('--batch-size <n>', 'batch size', '64')
    .option('--lr <x>', 'peak learning rate (cosine schedule after linear warmup)', '0.002')
    .option('--weight-decay <x>', 'decoupled weight decay', '0.0005')
    .option('--warmup <steps>', 'linear warmup steps (default: 5% of the steps)')
    .option('--optimizer <name>', 'adamw or sgd (momentum 0.9)', 'adamw')
    .option('--class-weights <w>', 'weight the loss per class: balanced, median (median-frequency), or one number per class, comma-separated')
    .option('--ignore-index <label>', 'segmentation: the label the loss and the metrics skip (default: the data set\'s, 255)')
    .option('--seed <n>', 'seed of initialization, data order, augmentation and stochastic rounding', '0')
    .option('--max-train <n>', 'train on the first N examples of the seeded shuffle')
    .option('--max-test <n>', 'evaluate on the first N test examples')
    .option('--width <n>', 'model base width, where the model has one')
    .option('--depth <n>', 'UNet depth')
    .option('--image-size <HxW>', 'resize image folders to this size')
    .option('--checkpoint-every <steps>', 'also checkpoint every N steps (0: at epoch ends only)', '0')
    .option('--log-every <steps>', 'metrics log interval in steps', '10')
    .option('--prune <block:sparsity>', 'prune weights in blocks during training, e.g. 8x8:0.75 (blocks RxC or filter, sparsity in [0, 1))')
    .option('--prune-start <step>', 'step the pruning starts at (default 0)')
    .option('--prune-end <step>', 'step the final sparsity is reached at, cubic from --prune-start (default: --prune-start, one-shot)')
    .option('--prune-every <steps>', 'recompute the masks every N steps between start and end (default 100)')
    .option('--prune-global', 'rank the blocks of all pruned layers together instead of each layer by itself')
    .option('--prune-exclude <paths>', 'layer paths left dense, comma-separated (e.g. layer1.0.conv1,fc)')
    .option('--prune-first-last', 'prune the first and last GEMM layers too (kept dense by default)')
    .option('--prune-kernels <auto|dense>', 'auto (default): pruned convolutions run their forward, and their gradients in training, on the block-sparse kernel where fixed rules say it is faster; dense: never')
    .option('--init <checkpoint>', 'start from this checkpoint\'s model weights (fine-tuning, e.g. after octet prune); optimizer and recipe state start fresh')
    .option('--resume', 'continue from the checkpoint in --out')
    .option('--overwrite', 'replace the run --out holds (its files go once the new run has taken its first step)')
    .addOption(convOption())
    .option('--no-progress', 'no progress bar');
}

function buildProgram(io: CliIo, setExitCode: (code: number) => void): Command {
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
    .requiredOption('-f, --format <format>', 'target format (e.g. e5m2, e4m3, e2m1, e6m9, fp16, bf16, e3m4, or the scale format e8m0)')
    .addOption(new Option('-r, --rounding <mode>', 'rounding mode').choices(ROUNDINGS).default('nearest'))
    .option('--seed <n>', 'seed of stochastic rounding (non-negative integer)', '0')
    .option('--saturate', 'send overflow and ±Inf to ±max finite instead of Inf/NaN')
    .option('--block <n>', 'MX conversion: blocks of n inputs share an E8M0 scale; prints input, element code, scale code, value')
    .action((options) => castCommand(options, io));

  program
    .command('gemm')
    .description('one emulated GEMM C = A B on raw operand codes (row-major, scales 1); writes C as M x N little-endian float32')
    .requiredOption('--a <file>', 'A: M x K codes of --a-format (1 byte each, or 2 little-endian bytes for 9- to 16-bit formats)')
    .requiredOption('--b <file>', 'B: K x N codes of --b-format')
    .requiredOption('--shape <MxKxN>', 'the GEMM shape, such as 64x128x32')
    .requiredOption('--a-format <format>', 'format of A (e.g. e4m3, e5m2)')
    .requiredOption('--b-format <format>', 'format of B')
    .option('--accumulation <name|file.json>', 'fp32, a format rounded after every add (e6m9, fp16, ...), hopper-fp8 or hopper-fp8-fast (an H200\'s FP8 tensor cores, fast accumulation off or on), or a JSON file { format, chunk, rounding, saturate, seed }', 'fp32')
    .option('--out <file>', 'write C to this file instead of standard output')
    .action((options) => gemmCommand(options, io));

  program
    .command('models')
    .description('list the models with their default classes, input channels, input size and parameter count')
    .option('--json', 'print JSON instead of a table')
    .action((options: { json?: boolean }) => modelsCommand(options, io));

  program
    .command('summary')
    .description('one line per layer of a model: name, op, output shape, parameters, multiply-accumulates; or of a checkpoint: each GEMM layer\'s pruning (block shape, blocks kept, zero weights)')
    .option('-m, --model <name>', 'model name (see octet models)')
    .option('-c, --checkpoint <file>', 'a checkpoint.safetensors written by octet train: its layers\' sparsity')
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

  trainingOptions(program.command('train').description('train a model under a recipe; checkpoints, metrics log and result in --out'))
    .option('-r, --recipe <name|file.json>', 'preset recipe or a recipe file', 'fp32')
    .option('-o, --out <dir>', 'output folder', 'runs/train')
    .action(async (options) => {
      setExitCode(await trainCommand(options, io));
    });

  program
    .command('prune')
    .description('prune a trained checkpoint once, in blocks, and write it (with its masks) to --out; fine-tune with octet train --init, or evaluate with octet eval')
    .requiredOption('-c, --checkpoint <file>', 'checkpoint.safetensors written by octet train')
    .requiredOption('--block <shape>', 'block shape: RxC (1x1, 4x4, 8x8, 16x16, ...) or filter')
    .requiredOption('--sparsity <s>', 'fraction of each layer\'s blocks to drop, in [0, 1)')
    .option('--global', 'rank the blocks of all pruned layers together')
    .option('--norm <l1|l2>', 'block score: mean |w| (l1) or root mean square (l2)', 'l1')
    .option('--exclude <paths>', 'layer paths left dense, comma-separated')
    .option('--first-last', 'prune the first and last GEMM layers too')
    .requiredOption('-o, --out <dir>', 'output folder for the pruned checkpoint')
    .option('--overwrite', 'replace a checkpoint --out already holds')
    .action((options) => pruneCommand(options, io));

  program
    .command('eval')
    .description('evaluate a checkpoint on its data set (or another with --data); prints JSON')
    .requiredOption('-c, --checkpoint <file>', 'checkpoint.safetensors written by octet train')
    .option('-d, --data <spec>', 'data set (default: the one it was trained on)')
    .option('--max-test <n>', "evaluate on the first N test examples (default: the run's)")
    .option('--batch-size <n>', "batch size (default: the one the run evaluated with)")
    .option('--image-size <HxW>', 'resize image folders to this size')
    .option('-r, --recipe <name|file.json>', "evaluate under another recipe (fp32: no quantization; default: the checkpoint's)")
    .addOption(convOption("default: the checkpoint's"))
    .option('--dense', 'a pruned checkpoint on the dense products (default: its convolutions\' forward on the block-sparse kernel where the rule chooses it, as its training ran them)')
    .action((options) => evalCommand(options, io));

  trainingOptions(program.command('compare').description('train several recipes with the same seed and data order; writes summary.json and report.html'))
    .option('--recipes <list>', 'comma-separated recipes (presets or files)', 'fp32,sfp8,fp8')
    .option('-o, --out <dir>', 'output folder', 'runs/compare')
    .action(async (options) => {
      setExitCode(await compareCommand(options, io));
    });

  runOptions(
    program
      .command('stats')
      .description('numerics lab: per layer and tensor, distributions against candidate formats and product error against a float32 shadow; writes stats.json and stats.html')
      .option('-m, --model <name>', 'model (see octet models); with --checkpoint, checked against it')
      .option('-d, --data <spec>', `${DATA_HELP} (default with --checkpoint: its data)`),
  )
    .option('-r, --recipe <name|file.json>', "recipe (default fp32; with --checkpoint, the checkpoint's)")
    .option('-c, --checkpoint <file>', 'look at one batch through this trained checkpoint instead of training (step 0)')
    .option('--steps <list>', 'steps to look at, comma-separated (0: the first); the run trains up to the last', '0')
    .option('--formats <list>', 'candidate formats besides e5m2,e4m3,e6m9,fp16,bf16 (e.g. e3m4,e2m5)')
    .option('--tolerance <fraction>', 'narrowest-format table: the underflow + overflow a format may lose', '0.001')
    .option('-o, --out <dir>', 'output folder', 'runs/stats')
    .option('--json', 'print the records to standard output, one JSON object per line')
    .action(async (options) => {
      setExitCode(await statsCommand(options, io));
    });

  program
    .command('bench')
    .description(`measure speed, with numpy/OpenBLAS and ONNX Runtime as peers where present (groups: ${BENCH_GROUPS.join(', ')})`)
    .argument('[groups...]', 'benchmark groups to run; default: all')
    .option('--json', 'one JSON object per line')
    .option('--threads <list>', 'thread counts to measure, comma-separated (default: 1 and all cores)')
    .option('--model <name>', 'train: a zoo model, measured in fp32, fp8 (float32 accumulation) and fp8 (e6m9), with PyTorch alongside (default: the ResNet-18 suite)')
    .option('--batch <n>', 'train: batch size (default: the model\'s, 64 for the classifiers)')
    .option('--input <CxHxW>', 'train: input shape, e.g. 1x28x28 or 3x32x32 (default: the model\'s)')
    .option('--profile <steps>', 'train: steps measured under the profiler for the rows\' profile (0: none)', undefined)
    .action((groups: string[], options: BenchOptions) => benchCommand(groups, options, io));

  return program;
}

/** Run the command line; returns the exit code instead of exiting, so tests can call it. */
export async function runCli(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  let exitCode = 0;
  const program = buildProgram(io, (code) => (exitCode = code));
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    if (error instanceof OctetError) {
      const flag = error instanceof SettingError && SETTING_FLAGS[error.setting];
      // A message that already names the flag needs no translation.
      const named = flag && !error.message.includes(flag);
      io.stderr(`octet: error: ${error.message}${named ? ` (${(error as SettingError).setting} is ${flag} on the command line)` : ''}\n`);
      return 1;
    }
    throw error;
  }
}

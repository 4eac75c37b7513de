#!/usr/bin/env node
// The `conv-transpose` command: run a transposed convolution on .npy files, show what backend runs, run the
// benchmark, and upsample a picture with a bilinear-initialised ConvTranspose2d.
// Exit codes: 0 success, 1 a failed operation (`error <code>: <message>` on stderr), 2 a usage error.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import * as cliProgress from 'cli-progress';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { chooseBackend, convTranspose2d, getBackend, type BackendInfo } from './api';
import { nativeBinding } from './backend-native';
import { ConvTransposeError } from './errors';
import { readNpyFile, writeNpyFile } from './npy';
import type { BackendChoice, ConvTranspose2dOptions, Size2, Tensor } from './types';
import { decodePng, encodePng, upsampleGeometry, upsampleImage, MAX_SCALE, type EdgeMode } from './cli/upsample';

/** The package root: dist/ (built) and lib/ (sources) are both one level down. */
const packageRoot = path.join(__dirname, '..');

function packageVersion(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** A failure of the command itself (not of the library): printed as `error <code>: <message>`, exit 1. */
class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

// ---------- argument parsing helpers (values go to the library unchanged, so its errors speak) ----------

/** A number when the text is one, else the text itself (the library then names the bad value). */
function numberOrText(text: string): number | string {
  const t = text.trim();
  return t !== '' && Number.isFinite(Number(t)) ? Number(t) : t;
}

/** `2` -> 2, `2,1` / `2x1` / `[2,1]` -> [2, 1]; non-numbers are passed through for the library to reject. */
export function parseSize(text: string): Size2 {
  const inner = text.trim().replace(/^\[(.*)\]$/, '$1');
  const parts = inner.split(/[,x]/);
  if (parts.length === 1) return numberOrText(parts[0]!) as Size2;
  return parts.map(numberOrText) as unknown as Size2;
}

/** `12,12` / `2x4x12x12` / `[12, 12]` -> a list. */
export function parseList(text: string): number[] {
  const inner = text.trim().replace(/^\[(.*)\]$/, '$1');
  return inner.split(/[,x]/).map(numberOrText) as number[];
}

function parseScale(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > MAX_SCALE) throw new InvalidArgumentError(`expected an integer from 1 to ${MAX_SCALE}.`);
  return n;
}

function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function dtypeOf(t: Tensor): string {
  return t.data instanceof Float64Array ? 'float64' : 'float32';
}

function describeBackend(used: 'native' | 'js', threads: number | undefined, info: BackendInfo): string {
  if (used === 'js') return 'TypeScript backend';
  const isa = nativeBinding ? nativeBinding.info().isa : info.isa;
  return `native backend, ${isa}, ${threads ?? info.threads} thread${(threads ?? info.threads) === 1 ? '' : 's'}`;
}

function fmtMs(ms: number): string {
  return ms >= 100 ? `${ms.toFixed(0)} ms` : ms >= 1 ? `${ms.toFixed(1)} ms` : `${ms.toFixed(3)} ms`;
}

// ---------- run ----------

interface RunOptions {
  input: string;
  weight: string;
  bias?: string;
  stride?: Size2;
  padding?: Size2;
  outputPadding?: Size2;
  groups?: number | string;
  dilation?: Size2;
  outputSize?: number[];
  backend?: string;
  threads?: number | string;
  out: string;
}

function runCommand(o: RunOptions): void {
  const input = readNpyFile(o.input);
  const weight = readNpyFile(o.weight);
  const bias = o.bias !== undefined ? readNpyFile(o.bias) : undefined;
  const options: ConvTranspose2dOptions = {};
  if (bias) options.bias = bias;
  if (o.stride !== undefined) options.stride = o.stride;
  if (o.padding !== undefined) options.padding = o.padding;
  if (o.outputPadding !== undefined) options.outputPadding = o.outputPadding;
  if (o.groups !== undefined) options.groups = o.groups as number;
  if (o.dilation !== undefined) options.dilation = o.dilation;
  if (o.outputSize !== undefined) options.outputSize = o.outputSize;
  if (o.backend !== undefined) options.backend = o.backend as BackendChoice;
  if (o.threads !== undefined) options.threads = o.threads as number;

  const t0 = performance.now();
  const y = convTranspose2d(input, weight, options);
  const ms = performance.now() - t0;
  writeNpyFile(o.out, y);

  const given = (['stride', 'padding', 'outputPadding', 'dilation', 'groups', 'outputSize'] as const)
    .filter((k) => options[k] !== undefined)
    .map((k) => `${k} ${JSON.stringify(options[k])}`);
  const lines = [
    `input   ${o.input}  ${dtypeOf(input)} ${fmtShape(input.shape)}`,
    `weight  ${o.weight}  ${dtypeOf(weight)} ${fmtShape(weight.shape)}`,
    ...(bias ? [`bias    ${o.bias}  ${dtypeOf(bias)} ${fmtShape(bias.shape)}`] : []),
    `options ${given.length ? given.join(', ') : '(PyTorch defaults)'}`,
    `output  ${o.out}  ${dtypeOf(y)} ${fmtShape(y.shape)}  computed in ${fmtMs(ms)} on the ${describeBackend(
      chooseBackend(options.backend),
      typeof options.threads === 'number' ? options.threads : undefined,
      getBackend(),
    )}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

// ---------- info ----------

/** Everything `conv-transpose info` reports. */
export interface InfoReport {
  version: string;
  backend: 'native' | 'js';
  isa: string | null;
  isaAvailable: string[];
  threads: number;
  hardwareConcurrency: number | null;
  napiVersion: number | null;
  nodeNapiVersion: string;
  /** The loaded binary, relative to the package root (build/Release/… or prebuilds/<platform>-<arch>/…). */
  addon: string | null;
  loadError: string | null;
  platform: string;
  node: string;
  env: Record<string, string>;
}

function addonPath(): string | null {
  if (!nativeBinding) return null;
  try {
    const resolve = (require('node-gyp-build') as { resolve(dir: string): string }).resolve;
    return path.relative(packageRoot, resolve(packageRoot)).replace(/\\/g, '/') || null;
  } catch {
    return null;
  }
}

function collectInfo(): InfoReport {
  const b = getBackend();
  const ni = nativeBinding ? nativeBinding.info() : null;
  const env: Record<string, string> = {};
  for (const k of ['CONV_TRANSPOSE_BACKEND', 'CONV_TRANSPOSE_NATIVE']) if (process.env[k]) env[k] = process.env[k]!;
  return {
    version: packageVersion(),
    backend: b.name,
    isa: b.name === 'native' ? (b.isa ?? null) : null,
    isaAvailable: ni ? ni.isaAvailable : [],
    threads: b.threads,
    hardwareConcurrency: ni ? ni.hardwareConcurrency : null,
    napiVersion: ni ? ni.napiVersion : null,
    nodeNapiVersion: process.versions.napi ?? 'unknown',
    addon: addonPath(),
    loadError: b.loadError ?? null,
    platform: `${process.platform}-${process.arch}`,
    node: process.version,
    env,
  };
}

function infoCommand(o: { json?: boolean }): void {
  const r = collectInfo();
  if (o.json) {
    process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    return;
  }
  const rows: Array<[string, string]> = [
    ['version', `conv-transpose ${r.version}`],
    ['backend', r.backend === 'native' ? `native (${r.isa})` : 'js (pure TypeScript)'],
  ];
  if (r.backend === 'native' || r.napiVersion !== null) {
    rows.push(['isa', `${r.isa ?? '-'} (available: ${r.isaAvailable.join(', ')})`]);
  }
  rows.push(['threads', `${r.threads} by default${r.hardwareConcurrency !== null ? ` (hardware: ${r.hardwareConcurrency})` : ''}`]);
  if (r.napiVersion !== null) rows.push(['node-api', `addon built for N-API ${r.napiVersion}; this Node offers ${r.nodeNapiVersion}`]);
  if (r.addon) rows.push(['addon', r.addon]);
  if (r.loadError) rows.push(['native', `not loaded: ${r.loadError}`]);
  rows.push(['platform', `${r.platform}, Node ${r.node}`]);
  for (const [k, v] of Object.entries(r.env)) rows.push(['env', `${k}=${v}`]);
  const w = Math.max(...rows.map(([k]) => k.length));
  process.stdout.write(`${rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n')}\n`);
  if (r.backend === 'js' && !r.env.CONV_TRANSPOSE_BACKEND) {
    process.stdout.write(
      '\nThe TypeScript implementation is serving every call. For the native one: install cmake and a C++17 compiler,\n' +
        'then `npm rebuild conv-transpose` (CONV_TRANSPOSE_NATIVE=build forces a build from source).\n',
    );
  }
}

// ---------- upsample ----------

/** The picture the package ships (rendered by scripts/render-sample.js). */
export const SAMPLE_IMAGE = path.join(packageRoot, 'assets', 'sample.png');

interface UpsampleCliOptions {
  scale: number;
  out: string;
  edges: EdgeMode;
  backend?: string;
  threads?: number | string;
}

function upsampleCommand(input: string | undefined, o: UpsampleCliOptions): void {
  const file = input ?? SAMPLE_IMAGE;
  let image;
  try {
    image = decodePng(fs.readFileSync(file));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code) throw e; // fs errors keep their code
    throw new CliError('ERR_CLI_PNG', `${file} is not a readable PNG: ${(e as Error).message}`);
  }
  const g = upsampleGeometry(o.scale);
  const t0 = performance.now();
  const big = upsampleImage(image, o.scale, {
    edges: o.edges,
    ...(o.backend !== undefined ? { backend: o.backend as BackendChoice } : {}),
    ...(o.threads !== undefined ? { threads: o.threads as number } : {}),
  });
  const ms = performance.now() - t0;
  fs.writeFileSync(o.out, encodePng(big));
  const kind = ['gray', 'gray+alpha', 'RGB', 'RGBA'][image.channels - 1];
  const shown = input === undefined ? `${path.relative(process.cwd(), file)} (the sample image shipped with the package)` : file;
  process.stdout.write(
    `read    ${shown}: ${image.width}x${image.height} ${kind}\n` +
      `layer   ConvTranspose2d(${image.channels}, ${image.channels}, kernel_size=${g.kernelSize}, stride=${g.stride}, ` +
      `padding=${g.padding}, groups=${image.channels}, bias=False), bilinear-initialised weights, ${o.edges} edges\n` +
      `wrote   ${o.out}: ${big.width}x${big.height} ${kind} (x${o.scale}) in ${fmtMs(ms)} on the ` +
      `${describeBackend(chooseBackend(o.backend as BackendChoice | undefined), typeof o.threads === 'number' ? o.threads : undefined, getBackend())}\n`,
  );
}

// ---------- bench ----------

interface BenchCliOptions {
  shapes?: string;
  quick?: boolean;
  ts?: boolean;
  peers?: boolean;
  fp64?: boolean;
  mem?: boolean;
  verbose?: boolean;
}

function countShapes(selected: string | undefined): number {
  if (selected) return selected.split(',').filter((s) => s.trim()).length;
  for (const p of [path.join(packageRoot, '..', 'shared', 'bench', 'shapes.json'), path.join(packageRoot, 'bench', 'shapes.json')]) {
    try {
      return (JSON.parse(fs.readFileSync(p, 'utf8')) as { shapes: unknown[] }).shapes.length;
    } catch {
      /* try the next */
    }
  }
  return 0;
}

/**
 * Runs bench/run.js (which runs its suite as soon as it is loaded, with process.argv) in a child process.
 * On a terminal: a progress bar per shape, then the summary table; elsewhere (or with --verbose) its full log.
 */
function benchCommand(o: BenchCliOptions): Promise<number> {
  const script = path.join(packageRoot, 'bench', 'run.js');
  if (!fs.existsSync(script)) {
    throw new CliError(
      'ERR_CLI_BENCH_UNAVAILABLE',
      'the benchmark is not part of the published package; clone the repository and run `npm ci && npm run bench`',
    );
  }
  const args: string[] = [];
  if (o.shapes) args.push('--shapes', o.shapes);
  if (o.quick) args.push('--quick');
  if (o.ts === false) args.push('--no-ts');
  if (o.peers === false) args.push('--no-peers');
  if (o.fp64 === false) args.push('--no-fp64');
  if (o.mem === false) args.push('--no-mem');
  const useBar = !o.verbose && process.stderr.isTTY === true;
  const child = spawn(process.execPath, [script, ...args], {
    cwd: packageRoot,
    stdio: ['ignore', useBar ? 'pipe' : 'inherit', 'inherit'],
  });
  if (!useBar) return new Promise((resolve) => child.on('close', (code) => resolve(code ?? 1)));

  const total = countShapes(o.shapes) + (o.fp64 === false ? 0 : 1) + (o.mem === false ? 0 : 1);
  const bar = new cliProgress.SingleBar(
    { format: 'bench [{bar}] {value}/{total} {step}  {duration_formatted}', hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(Math.max(total, 1), 0, { step: 'starting (measuring the machine peak)' });
  const lines: string[] = [];
  let pending = '';
  let done = 0;
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    pending += chunk;
    const parts = pending.split('\n');
    pending = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      const m = /^── (\S+)\s*(.*)$/.exec(line);
      if (m) {
        done += 1;
        if (done > total) bar.setTotal(done);
        bar.update(done - 1, { step: `${m[1]} ${m[2]!.slice(0, 40)}` });
      }
    }
  });
  return new Promise((resolve) => {
    child.on('close', (code) => {
      if (pending) lines.push(pending);
      bar.update(Math.max(done, total));
      bar.stop();
      // The preamble (machine, peak, notes) and everything from the summary table on; --verbose shows all.
      const first = lines.findIndex((l) => l.startsWith('── '));
      const summary = lines.findIndex((l) => l.startsWith('## Summary'));
      const shown = code === 0 && first >= 0 && summary > first ? [...lines.slice(0, first), ...lines.slice(summary)] : lines;
      process.stdout.write(`${shown.join('\n')}\n`);
      if (code === 0) process.stdout.write(`chart: ${path.join(packageRoot, 'bench', 'chart.svg')}\n`);
      resolve(code ?? 1);
    });
  });
}

// ---------- the program ----------

/** Builds the command-line program (exported for tests; `main` runs it). */
export function buildProgram(): Command {
  const program = new Command();
  program
    .name('conv-transpose')
    .description("2-D transposed convolution (ConvTranspose2d) with PyTorch's semantics, on a native kernel or TypeScript")
    .version(packageVersion(), '-v, --version')
    .exitOverride()
    .showHelpAfterError('(add --help for usage)');

  const backendOption = () =>
    new Option('--backend <name>', 'force an implementation for this call: auto, native or js (default: auto)');
  const threadsOption = () => new Option('--threads <n>', 'threads for the native backend').argParser(numberOrText);

  program
    .command('run')
    .description('conv_transpose2d on .npy files, with all of PyTorch\'s parameters (sizes: 2 or 2,1)')
    .requiredOption('-i, --input <file>', 'input .npy, (N, Cin, H, W) or (Cin, H, W), float32 or float64')
    .requiredOption('-w, --weight <file>', 'weight .npy, (Cin, Cout/groups, kH, kW)')
    .option('-b, --bias <file>', 'bias .npy, (Cout,)')
    .option('--stride <size>', 'stride (default 1)', parseSize)
    .option('--padding <size>', 'padding (default 0)', parseSize)
    .option('--output-padding <size>', 'output padding (default 0)', parseSize)
    .option('--groups <n>', 'groups (default 1)', numberOrText)
    .option('--dilation <size>', 'dilation (default 1)', parseSize)
    .option('--output-size <list>', 'output size H,W (or N,C,H,W), as module forward(x, output_size)', parseList)
    .addOption(backendOption())
    .addOption(threadsOption())
    .requiredOption('-o, --out <file>', 'where to write the result (.npy, the input\'s dtype)')
    .addHelpText(
      'after',
      '\nExample:\n  conv-transpose run --input x.npy --weight w.npy --bias b.npy --stride 2 --padding 1 --out y.npy',
    )
    .action((o: RunOptions) => runCommand(o));

  program
    .command('info')
    .description('version, backend, instruction set, threads, and why the native addon did not load')
    .option('--json', 'print a JSON object')
    .action((o: { json?: boolean }) => infoCommand(o));

  program
    .command('bench')
    .description('the benchmark suite (from a clone of the repository): progress, table and chart')
    .option('--shapes <ids>', 'comma-separated shape ids, e.g. A2,B1')
    .option('--quick', 'fewer repetitions')
    .option('--no-ts', 'skip the TypeScript backend')
    .option('--no-peers', 'skip onnxruntime-node and tfjs')
    .option('--no-fp64', 'skip the float64 runs')
    .option('--no-mem', 'skip the memory measurement')
    .option('--verbose', 'show the full per-shape log instead of a progress bar')
    .action(async (o: BenchCliOptions) => {
      const code = await benchCommand(o);
      if (code !== 0) process.exitCode = 1;
    });

  program
    .command('upsample')
    .description('upsample a PNG with a bilinear-initialised depthwise ConvTranspose2d (the FCN layer)')
    .argument('[input]', 'a PNG file (default: the sample image shipped with the package)')
    .addOption(new Option('-s, --scale <f>', 'upsampling factor').argParser(parseScale).default(4))
    .option('-o, --out <file>', 'output PNG', 'upsampled.png')
    .addOption(new Option('--edges <mode>', 'border handling').choices(['replicate', 'zero']).default('replicate'))
    .addOption(backendOption())
    .addOption(threadsOption())
    .addHelpText(
      'after',
      '\nWith replicate edges the result equals torch.nn.functional.interpolate(x, scale_factor=f, mode="bilinear",\n' +
        'align_corners=False); zero edges is the plain FCN layer, whose outermost pixels fade.\n\n' +
        'Example:\n  conv-transpose upsample photo.png --scale 3 --out photo-x3.png',
    )
    .action((input: string | undefined, o: UpsampleCliOptions) => upsampleCommand(input, o));

  return program;
}

/** Prints an error as `error <code>: <message>` (no stack for expected failures) and returns the exit code. */
function report(e: unknown): number {
  if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2; // commander printed the message already
  if (e instanceof ConvTransposeError) {
    process.stderr.write(`error ${e.code}: ${e.message}\n`);
    return 1;
  }
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err.code === 'string' && typeof err.message === 'string') {
    // e.g. ENOENT from fs: its message already starts with the code
    process.stderr.write(`error ${err.code}: ${err.message.replace(new RegExp(`^${err.code}: `), '')}\n`);
    return 1;
  }
  process.stderr.write(`error: ${err && err.stack ? err.stack : String(e)}\n`);
  return 1;
}

/** Runs the program on `argv` (as process.argv); resolves to the exit code. */
export async function main(argv: readonly string[] = process.argv): Promise<number> {
  try {
    await buildProgram().parseAsync(argv as string[]);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    return report(e);
  }
}

if (require.main === module) {
  void main().then((code) => {
    process.exitCode = code;
  });
}

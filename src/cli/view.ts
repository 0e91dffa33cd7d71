import { InvalidArgumentError, type Command } from 'commander';
import { EmsegError, isEmsegError } from '../errors.js';
import { classifyPaths } from '../viewer/classify.js';
import { ViewModel, type ViewInputs } from '../viewer/model.js';
import { parseAllowedHost, startServer } from '../viewer/server.js';
import { labelPolarity, positiveInt } from './options.js';

export const DEFAULT_VIEW_PORT = 8642;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

const MAX_PORT = 65535;

function port(value: string): number {
  const n = value === '0' ? 0 : positiveInt(value);
  if (n > MAX_PORT) throw new InvalidArgumentError(`expected a port from 0 to ${MAX_PORT}, got "${value}"`);
  return n;
}

/** Refused hosts named on stderr: one line each, up to this many (a hostile page may try many names). */
const MAX_REFUSED_NOTICES = 10;

/** --allow-host (repeatable): checked here, so a typo stops the command before it serves anything. */
function allowHost(value: string, all: string[] = []): string[] {
  try {
    parseAllowedHost(value, ''); // no path: commander names the flag itself
  } catch (err) {
    if (isEmsegError(err, 'invalid-option')) throw new InvalidArgumentError(err.message);
    throw err;
  }
  return [...all, value];
}

/** Opens `url` in the desktop's browser, when asked to; a failure only leaves the URL to click. */
async function openBrowser(url: string): Promise<void> {
  const { spawn } = await import('node:child_process');
  const command = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
  spawn(command, [url], { stdio: 'ignore', detached: true }).on('error', () => {
    process.stderr.write(`emseg view: could not start ${command}; open ${url} yourself\n`);
  }).unref();
}

export function registerView(program: Command): void {
  program
    .command('view')
    .description('serve a web viewer for sections, membrane maps, cells, labels, error marks, training curves and studies')
    .argument('[paths...]', 'inputs, recognised by content: image stack, map (float), cells (uint32), labels, eval .json, training or study folder')
    .option('--images <path>', 'EM image stack')
    .option('--map <path>', 'membrane map from emseg predict (ISBI polarity: 1 = non-membrane)')
    .option('--compare <path>', 'a second membrane map, shown against the first with a swipe')
    .option('--membrane-prob', 'the maps hold P(membrane) (1 = membrane)')
    .option('--cells <path>', 'cells (label ids) from emseg segment')
    .option('--labels <path>', 'ground-truth labels (outlines; with --map also the split/merger marks)')
    .option('--polarity <p>', 'label encoding', labelPolarity)
    .option('--eval <file>', 'emseg eval --json --per-slice result: per-section scores and the marks\' threshold')
    .option('--train <dir>', 'training run folder (its train-log.jsonl)')
    .option('--study <dir>', 'study output folder (its study.json)')
    .option('--port <n>', 'port (0: any free one)', port, DEFAULT_VIEW_PORT)
    .option('--host <host>', 'address to listen on; anything but loopback exposes the data to the network', '127.0.0.1')
    .option('--allow-host <name>', 'also answer requests for this host name (or name:port, e.g. an SSH tunnel\'s localhost:9000); '
      + 'repeatable. Requests for any host but the --host address, localhost, 127.0.0.1 and [::1] are refused (DNS rebinding)', allowHost)
    .option('--open', 'open the page in the default browser')
    .action(async (paths: string[], o) => {
      const flags: ViewInputs = { images: o.images, map: o.map, compare: o.compare, membraneProb: o.membraneProb, cells: o.cells,
        labels: o.labels, polarity: o.polarity, eval: o.eval, train: o.train, study: o.study };
      for (const k of Object.keys(flags) as (keyof ViewInputs)[]) if (flags[k] === undefined) delete flags[k];
      const model = await ViewModel.open(await classifyPaths(paths, flags));
      for (const f of model.refused) process.stderr.write(`emseg view: not serving ${f}: it links to a place outside the folder given\n`);
      if (!LOOPBACK.has(o.host)) {
        process.stderr.write(`emseg view: WARNING: listening on ${o.host}: anyone who can reach this address can read the data given\n`);
      }
      const refused = new Set<string>();
      const onRefusedHost = (host: string) => {
        if (refused.has(host) || refused.size >= MAX_REFUSED_NOTICES) return;
        refused.add(host);
        process.stderr.write(`emseg view: refused a request for host '${host}': not this viewer's address (a web page may be trying DNS rebinding); `
          + `if it is yours, restart with --allow-host ${host || 'NAME'}\n`);
      };
      const server = await startServer(model, o.host, o.port, { allowHosts: o.allowHost, onRefusedHost }).catch((err: unknown) => {
        throw err instanceof EmsegError && o.port === DEFAULT_VIEW_PORT ? new EmsegError(err.code, err.path, `${err.message}; pick another with --port`) : err;
      });
      process.stdout.write(`emseg view: ${server.url}  (Ctrl-C to stop)\n`);
      if (o.open) await openBrowser(server.url);
      await new Promise<void>((resolve) => process.once('SIGINT', resolve));
      await server.close();
    });
}

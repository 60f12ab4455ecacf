/** `ttt-workbench eval` and `ttt-workbench worker`: corpus evaluation on this machine or across machines. */
import { availableParallelism } from 'node:os';
import { selectBackend } from '../core/backend.js';
import { checkRedisUrl, defaultQueue, redactUrl, redisExecutor, startWorker } from '../corpus/cluster.js';
import { evaluateCorpus, localExecutor } from '../corpus/eval.js';
import { readCorpus } from '../corpus/read.js';
import { engineVersions } from './analyze.js';
import { type Command, intOption, parseCommandArgs, requireOption } from './args.js';

const evalHelp = `Usage: ttt-workbench eval CORPUS --model DIR [--model DIR2 ...] --out DIR [options]

Streams every document of a corpus through each model as analyze does (state carried from chunk to chunk,
Transformers on their trained window), and gives the corpus's NLL by position: per log-spaced position bin, the
mean NLL with its standard error, 95% interval and the number of documents reaching it; bits per byte overall
and per document. Sums are exact and taken in document order: the result does not depend on the order documents
finish in, the number of jobs, or the machines that computed them.

CORPUS is a folder of .txt files, a JSON Lines file (.jsonl), a Parquet file (.parquet: Hugging Face datasets
such as PG19) or an Arrow IPC file (.arrow). Empty, binary or mis-encoded documents are skipped with one line each.

  DIR/manifest.json                    corpus, models and their content hashes, settings, status, bits/byte
  DIR/models/<model>/bins.arrow        bin_start, bin_end, tokens, documents, nll_sum, nll_squared_sum, mean_nll,
                                       standard_error, ci_low, ci_high
  DIR/models/<model>/documents.arrow   document, name, tokens, bytes, nll_sum, bits_per_byte, seconds, worker
  DIR/results/<model>/<document>.json  each document's binned sums, saved as it finishes
Ctrl-C stops between documents; the same command again resumes (a finished document is never recomputed).

Options:
  --model DIR         model folder (repeat for several models)
  --out DIR           corpus run folder (created, or resumed)
  --text-field NAME   the text field or column of JSONL, Parquet and Arrow corpora (default text)
  --documents N       only the first N usable documents
  --max-tokens L      only the first L tokens of each document (default: whole documents)
  --window N|full     Transformers: attention window (default: each model's trained context)
  --chunk N           tokens per chunk (default 512)
  --jobs N            documents at once on this machine, one worker thread each (default: one per core)
  --backend B         tensorflow | webgpu | wasm | cpu (default: the best available)
  --store DIR         also write per-token files DIR/<model>/<document>.arrow (on a cluster: a folder the
                      workers share)
  --redis URL         run on a cluster: enqueue one job per (document, model) on this Redis
                      (redis://[user:password@]host[:port][/db], rediss:// for TLS) for 'ttt-workbench worker's
  --queue NAME        BullMQ queue name (default ${defaultQueue})
  --attempts N        cluster: tries per job before it is reported failed (default 3)
  -h, --help          show this help`;

export const evalCommand: Command = {
  name: 'eval',
  help: evalHelp,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs('eval', argv, {
      model: { type: 'string', multiple: true }, out: { type: 'string' }, 'text-field': { type: 'string' }, documents: { type: 'string' },
      'max-tokens': { type: 'string' }, window: { type: 'string' }, chunk: { type: 'string' }, jobs: { type: 'string' },
      backend: { type: 'string' }, store: { type: 'string' }, redis: { type: 'string' }, queue: { type: 'string' }, attempts: { type: 'string' },
    }, true);
    if (values.help) {
      io.stdout(evalHelp);
      return 0;
    }
    const corpusPath = requireOption('eval', positionals[0], 'CORPUS');
    const models = values.model ?? [];
    requireOption('eval', models[0], '--model');
    const out = requireOption('eval', values.out, '--out');
    const window = values.window === undefined || values.window === 'full' ? values.window : intOption('eval', values.window, '--window', 1);
    const jobs = intOption('eval', values.jobs, '--jobs', 1) ?? availableParallelism();
    const attempts = intOption('eval', values.attempts, '--attempts', 1);
    const maxTokens = intOption('eval', values['max-tokens'], '--max-tokens', 2);
    const chunkTokens = intOption('eval', values.chunk, '--chunk', 1);
    if (values.redis !== undefined) checkRedisUrl(values.redis);
    const corpus = await readCorpus(corpusPath, { textField: values['text-field'], maxDocuments: intOption('eval', values.documents, '--documents', 1) });
    const backend = await selectBackend(values.backend);
    const url = values.redis;
    const controller = new AbortController();
    const onSigint = () => controller.abort();
    process.once('SIGINT', onSigint);
    try {
      io.stderr(`${corpus.documents.length} documents from ${corpusPath} (${corpus.format}), ${models.length} model${models.length > 1 ? 's' : ''}, ` +
        (url ? `on the cluster at ${redactUrl(url)}` : `${jobs} at once on backend ${backend.name}`));
      const { manifest, outDir } = await evaluateCorpus({
        corpus, models, outDir: out, backend, window, maxTokens, chunkTokens, storeDir: values.store, versions: engineVersions(),
        signal: controller.signal, log: io.stderr,
        executor: url ? redisExecutor({ url, queue: values.queue, attempts }) : localExecutor({ backend: backend.name, jobs }),
        executorName: url ? `redis ${redactUrl(url)}` : `local, ${jobs} jobs`,
      });
      for (const m of manifest.models) {
        io.stdout(`${m.name.padEnd(28)} ${m.documentsDone}/${manifest.corpus.documents} documents  ${m.tokens} tokens  ` +
          `${m.bitsPerByte === null ? '-' : m.bitsPerByte.toFixed(4)} bits/byte`);
      }
      io.stderr(`corpus run ${manifest.status}: ${outDir}`);
      return manifest.status === 'finished' ? 0 : manifest.status === 'cancelled' ? 130 : 1;
    } finally {
      process.off('SIGINT', onSigint);
    }
  },
};

const workerHelp = `Usage: ttt-workbench worker --redis URL [options]

Serves corpus evaluation jobs from 'ttt-workbench eval --redis URL' (BullMQ over Redis) until stopped (Ctrl-C or
SIGTERM finishes the jobs it holds, then exits). Run one per machine, with the models at the same paths as on the
coordinator (each job names its model's folder and content hash; a different model there is refused).

Options:
  --redis URL         redis://[user:password@]host[:port][/db], or rediss:// for TLS
  --concurrency N     jobs at once, one worker thread each (default 1; on a CPU machine, its cores)
  --backend B         tensorflow | webgpu | wasm | cpu (default: the best available)
  --queue NAME        BullMQ queue name (default ${defaultQueue})
  --lock-ms N         job lock time and stalled-job check interval in ms: a dead worker's job is retried
                      elsewhere within about twice this (default 30000)
  -h, --help          show this help`;

export const workerCommand: Command = {
  name: 'worker',
  help: workerHelp,
  async run(argv, io) {
    const { values } = parseCommandArgs('worker', argv, {
      redis: { type: 'string' }, concurrency: { type: 'string' }, backend: { type: 'string' }, queue: { type: 'string' }, 'lock-ms': { type: 'string' },
    });
    if (values.help) {
      io.stdout(workerHelp);
      return 0;
    }
    const url = requireOption('worker', values.redis, '--redis');
    checkRedisUrl(url);
    const backend = await selectBackend(values.backend);
    const worker = await startWorker({
      url, backend: backend.name, queue: values.queue, concurrency: intOption('worker', values.concurrency, '--concurrency', 1),
      lockMs: intOption('worker', values['lock-ms'], '--lock-ms', 100), log: io.stderr,
    });
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    io.stderr(`worker ${worker.name}: stopping`);
    await worker.close();
    return 0;
  },
};


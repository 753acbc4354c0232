// target swarm beside the compose path, side by side in one run (each sample
// from a freshly reset bed, the three interleaved, median of RUNS, default 5):
//   - compose, restart: targeted (the action's default on the compose sandbox);
//   - swarm, update_config.order: stop-first (backend and worker);
//   - swarm, update_config.order: start-first (the backend binds its port
//     with SO_REUSEPORT, so the old and the new task serve side by side).
// Per run: the API downtime a 20 ms prober on loopback sees (first failed →
// first healthy answer; 0 when no probe failed), the failed probes, the
// action's downtime-seconds output, the host journal prober's API downtime,
// and the host sequence (first step → result). Writes docs/BENCHMARKS.md's
// swarm section.
//   npx tsx bench/swarm.ts [--runs N]      (npm run bench:swarm)
import { readFileSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startSandbox } from '../sandbox/index.js'
import { runAction, sandboxInputs, startSandboxGitHub } from '../sandbox/run-action.js'
import { startSwarmSandbox, type UpdateOrder } from '../sandbox/swarm.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const runsArg = process.argv.indexOf('--runs')
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5

const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** Polls every 20 ms: first failed answer, first 200 after it, and how many probes failed. */
function probe(url: string): {
  stop: () => Promise<{ downtime: number; failed: number; probes: number }>
} {
  let downAt: number | undefined
  let backAt: number | undefined
  let failed = 0
  let probes = 0
  let running = true
  const tick = async (): Promise<void> => {
    while (running) {
      let ok = false
      try {
        ok = (await fetch(url, { signal: AbortSignal.timeout(1000) })).ok
      } catch {
        ok = false
      }
      const at = Date.now()
      probes++
      if (!ok) {
        failed++
        downAt ??= at
      } else if (downAt !== undefined && backAt === undefined) backAt = at
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  const loop = tick()
  return {
    stop: async () => {
      running = false
      await loop
      if (downAt !== undefined && backAt === undefined) throw new Error('the API never came back')
      return {
        downtime: downAt === undefined ? 0 : ((backAt as number) - downAt) / 1000,
        failed,
        probes
      }
    }
  }
}

interface Sample {
  downtime: number
  failed: number
  output?: number
  journalApi?: number
  sequence?: number
}

function journalFigures(deployPath: string): { journalApi?: number; sequence?: number } {
  const journal = readFileSync(path.join(deployPath, '.rotation', 'journal'), 'utf8')
  const at = (pattern: RegExp): number | undefined => {
    const line = journal.split('\n').find((l) => pattern.test(l))
    if (line === undefined) return undefined
    return Number(/at=(\d+)/.exec(line)?.[1] ?? line.split('\t')[0])
  }
  const down = at(/\tapi\t-\tdown\t/)
  const up = at(/\tapi\t-\tup\t/)
  const first = at(/\tstep-start\t/)
  const end = at(/\tresult\t/)
  return {
    journalApi: down !== undefined && up !== undefined ? (up - down) / 1000 : 0,
    sequence: first !== undefined && end !== undefined ? (end - first) / 1000 : undefined
  }
}

// create-missing: the stand-in starts with no secret (the bench is about the host, not CI).
const quiet = {
  'admin-credentials': '',
  'user-credentials': '',
  'create-issue': 'false',
  'create-missing': 'true'
}
const github = await startSandboxGitHub()
const compose = await startSandbox()
const swarm = await startSwarmSandbox()
let order: UpdateOrder = 'stop-first'

async function sample(
  what: string,
  bed: { reset: () => Promise<void>; urls: { health: string }; deployPath: string },
  inputs: Record<string, string>
): Promise<Sample> {
  await bed.reset()
  const prober = probe(bed.urls.health)
  const run = await runAction(inputs, { githubUrl: github.url })
  const seen = await prober.stop()
  if (run.outputs.result !== 'success')
    throw new Error(`${what}: ${run.outputs.result}\n${run.stdout}`)
  return {
    downtime: seen.downtime,
    failed: seen.failed,
    output: run.outputs['downtime-seconds'] ? Number(run.outputs['downtime-seconds']) : undefined,
    ...journalFigures(bed.deployPath)
  }
}

async function swarmSample(update: UpdateOrder): Promise<Sample> {
  if (order !== update) {
    await swarm.setUpdateOrder(update)
    order = update
  }
  return sample(`swarm ${update}`, swarm, {
    ...sandboxInputs(swarm, { target: 'swarm', 'compose-file': swarm.stackFile, ...quiet })
  })
}

const rows: Array<{ compose: Sample; stopFirst: Sample; startFirst: Sample }> = []
try {
  for (let i = 0; i < RUNS; i++) {
    const row = {
      compose: await sample('compose targeted', compose, sandboxInputs(compose, quiet)),
      stopFirst: await swarmSample('stop-first'),
      startFirst: await swarmSample('start-first')
    }
    rows.push(row)
    process.stdout.write(
      `run ${i + 1}: compose targeted ${row.compose.downtime.toFixed(2)} s, swarm stop-first ${row.stopFirst.downtime.toFixed(2)} s, swarm start-first ${row.startFirst.downtime.toFixed(2)} s (${row.startFirst.failed} failed probes)\n`
    )
  }
} finally {
  await github.stop()
  await compose.stop()
  await swarm.stop()
}

type Column = 'compose' | 'stopFirst' | 'startFirst'
const columns: Column[] = ['compose', 'stopFirst', 'startFirst']
const cell = (c: Column, pick: (s: Sample) => number | undefined, digits: number): string => {
  const xs = rows.map((r) => pick(r[c]))
  const known = xs.filter((x): x is number => x !== undefined)
  if (known.length === 0) return '–'
  return `${median(known).toFixed(digits)} (${xs.map((x) => x?.toFixed(digits) ?? '–').join(', ')})`
}
const line = (label: string, pick: (s: Sample) => number | undefined, digits = 2): string =>
  `| ${label} | ${columns.map((c) => cell(c, pick, digits)).join(' | ')} |`
const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`
const table = [
  '| measure (median, then each run) | compose, `restart: targeted` | swarm, `stop-first` | swarm, `start-first` |',
  '| --- | --- | --- | --- |',
  line('API downtime (20 ms prober), s', (s) => s.downtime),
  line('failed probes', (s) => s.failed, 0),
  line('`downtime-seconds` output, s', (s) => s.output, 1),
  line("API downtime from the host journal's prober, s", (s) => s.journalApi),
  line('host sequence (first step → result), s', (s) => s.sequence, 1)
].join('\n')
process.stdout.write(`\n${machine}\n${table}\n`)

const doc = path.join(ROOT, 'docs/BENCHMARKS.md')
const begin = '<!-- swarm-bench:begin -->'
const end = '<!-- swarm-bench:end -->'
let text = readFileSync(doc, 'utf8')
const section = `${begin}\nMeasured ${new Date().toISOString().slice(0, 10)} on ${machine}, docker-compose 1.29.2 and the sandbox's Docker engine as a single-node Swarm; ${RUNS} runs, the three interleaved, each from a freshly reset bed. ${process.env.BENCH_NOTE ?? ''}\n\n${table}\n${end}`
text = text.includes(begin)
  ? text.replace(new RegExp(`${begin}[\\s\\S]*${end}`), section)
  : `${text.trimEnd()}\n\n${section}\n`
writeFileSync(doc, text)
process.stdout.write(`\nwritten to docs/BENCHMARKS.md\n`)

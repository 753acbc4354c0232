// One sandbox run, median of RUNS each (default 5), side by side in the same
// run (each from a freshly reset sandbox):
//   - API downtime (a 20 ms prober on loopback: first failed → first healthy
//     answer) of restart: targeted, of restart: all, of the runbook scripted
//     by hand (a plain foreground shell script over SSH), and the app's own
//     floor (`up -d backend` → first healthy answer, everything else running);
//   - health detection latency: the app's first 200 → the host sequence's
//     healthy check (targeted runs);
//   - action start → SSH ready (spawn of dist/index.js → "SSH: connected");
//   - cold start of dist/index.js (to its config error and exit).
// Prints a table and writes docs/BENCHMARKS.md's measured section.
//   npx tsx bench/rotation.ts [--runs N]
import { execFileSync, spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { runCommand, startSandbox, type Sandbox } from '../sandbox/index.js'
import { runAction, sandboxInputs, startSandboxGitHub } from '../sandbox/run-action.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const runsArg = process.argv.indexOf('--runs')
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5

const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** The runbook's immediate rotation as a plain script: the floor for downtime. */
function plainScript(sandbox: Sandbox): string {
  const url = sandbox.urls.health
  return `set -e
cd '${sandbox.deployPath}'
ms() { date +%s%3N; }
t0=$(ms)
docker-compose -f ${sandbox.composeFile} down >/dev/null 2>&1
cp .env .env.bench && mv -f .env.bench .env
docker-compose -f ${sandbox.composeFile} up -d postgres >/dev/null 2>&1
until docker-compose -f ${sandbox.composeFile} exec -T postgres pg_isready -q; do sleep 0.25; done
docker-compose -f ${sandbox.composeFile} exec -T postgres psql -v ON_ERROR_STOP=1 -U cloudbox -d cloudbox -c 'DELETE FROM refresh_tokens;' >/dev/null
docker-compose -f ${sandbox.composeFile} up -d >/dev/null 2>&1
until curl -fs -o /dev/null -m 5 '${url}'; do sleep 0.25; done
echo $(( $(ms) - t0 ))
`
}

/** The app's own floor: backend removed (untimed), then `up -d backend`; prints its start time. */
function floorScript(sandbox: Sandbox): string {
  return `set -e
cd '${sandbox.deployPath}'
docker-compose -f ${sandbox.composeFile} rm -sf backend >/dev/null 2>&1
date +%s%3N
docker-compose -f ${sandbox.composeFile} up -d backend >/dev/null 2>&1
until curl -fs -o /dev/null -m 5 '${sandbox.urls.health}'; do sleep 0.02; done
`
}

/** Runs a script over SSH without blocking the event loop (the prober keeps running). */
async function overSsh(sandbox: Sandbox, script: string): Promise<string> {
  const r = await runCommand(
    'ssh',
    [
      '-F',
      '/dev/null',
      '-i',
      sandbox.ssh.privateKeyPath,
      '-p',
      String(sandbox.ssh.port),
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      `UserKnownHostsFile=${sandbox.ssh.knownHostsPath}`,
      `${sandbox.ssh.user}@${sandbox.ssh.host}`,
      'sh -s'
    ],
    { input: script }
  )
  if (r.code !== 0) throw new Error(`ssh script failed (${r.code}): ${r.stderr}`)
  return r.stdout
}

/** Polls the app every 20 ms; records its first failed answer and its first 200 after that. */
function probe(url: string): { stop: () => Promise<{ downAt?: number; backAt?: number }> } {
  let wasDown = false
  let downAt: number | undefined
  let backAt: number | undefined
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
      if (!ok) {
        if (!wasDown) downAt = at
        wasDown = true
      } else if (wasDown && backAt === undefined) backAt = at
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  const loop = tick()
  return {
    stop: async () => {
      running = false
      await loop
      return { downAt, backAt }
    }
  }
}

function coldStart(): number {
  const started = performance.now()
  spawnSync(process.execPath, [path.join(ROOT, 'dist/index.js')], {
    env: { PATH: process.env.PATH, GITHUB_OUTPUT: '/dev/null' },
    stdio: 'ignore'
  })
  return (performance.now() - started) / 1000
}

const sandbox = await startSandbox()
const github = await startSandboxGitHub()
interface Row {
  targeted: number
  all: number
  runbook: number
  floor: number
  /** The action's own figures for the targeted run: downtime-seconds and the journal's API downtime. */
  targetedOutput: number
  targetedJournalApi?: number
  detect?: number
  sshReady?: number
}
const rows: Row[] = []

const downtime = (p: { downAt?: number; backAt?: number }, what: string): number => {
  if (p.downAt === undefined || p.backAt === undefined)
    throw new Error(`${what}: the prober saw no outage`)
  return (p.backAt - p.downAt) / 1000
}

async function rotation(restart: 'targeted' | 'all') {
  await sandbox.reset()
  const prober = probe(sandbox.urls.health)
  let sshReadyAt: number | undefined
  const spawnedAt = Date.now()
  const run = await runAction(
    sandboxInputs(sandbox, {
      restart,
      'admin-credentials': '',
      'user-credentials': '',
      'create-issue': 'false'
    }),
    {
      githubUrl: github.url,
      onStdout: (text) => {
        if (sshReadyAt === undefined && text.includes('SSH: connected')) sshReadyAt = Date.now()
      }
    }
  )
  const seen = await prober.stop()
  if (run.outputs.result !== 'success')
    throw new Error(`restart ${restart}: ${run.outputs.result}\n${run.stdout}`)
  const journal = readFileSync(path.join(sandbox.deployPath, '.rotation', 'journal'), 'utf8')
  const at = (pattern: RegExp): number | undefined => {
    const line = journal.split('\n').find((l) => pattern.test(l))
    if (line === undefined) return undefined
    return Number(/at=(\d+)/.exec(line)?.[1] ?? line.split('\t')[0])
  }
  const healthyAt = at(/\tstep-end\thealth\tok/) as number
  const apiDown = at(/\tapi\t-\tdown\t/)
  const apiUp = at(/\tapi\t-\tup\t/)
  return {
    downtime: downtime(seen, `restart ${restart}`),
    output: Number(run.outputs['downtime-seconds']),
    journalApi: apiDown !== undefined && apiUp !== undefined ? (apiUp - apiDown) / 1000 : undefined,
    detect: seen.backAt !== undefined ? (healthyAt - seen.backAt) / 1000 : undefined,
    sshReady: sshReadyAt !== undefined ? (sshReadyAt - spawnedAt) / 1000 : undefined
  }
}

async function runbook(): Promise<number> {
  await sandbox.reset()
  const prober = probe(sandbox.urls.health)
  await overSsh(sandbox, plainScript(sandbox))
  return downtime(await prober.stop(), 'runbook script')
}

async function floor(): Promise<number> {
  await sandbox.reset()
  const prober = probe(sandbox.urls.health)
  const t0 = Number((await overSsh(sandbox, floorScript(sandbox))).trim().split('\n')[0])
  const seen = await prober.stop()
  if (seen.backAt === undefined) throw new Error('floor: the prober saw no healthy answer')
  return (seen.backAt - t0) / 1000
}

try {
  for (let i = 0; i < RUNS; i++) {
    const targeted = await rotation('targeted')
    const all = await rotation('all')
    const byHand = await runbook()
    const own = await floor()
    rows.push({
      targeted: targeted.downtime,
      all: all.downtime,
      runbook: byHand,
      floor: own,
      targetedOutput: targeted.output,
      targetedJournalApi: targeted.journalApi,
      detect: targeted.detect,
      sshReady: targeted.sshReady
    })
    process.stdout.write(
      `run ${i + 1}: targeted ${targeted.downtime.toFixed(2)} s, all ${all.downtime.toFixed(2)} s, runbook ${byHand.toFixed(2)} s, floor ${own.toFixed(2)} s, detection ${targeted.detect?.toFixed(3)} s, start→SSH ${targeted.sshReady?.toFixed(3)} s\n`
    )
  }
} finally {
  await github.stop()
  await sandbox.stop()
}
const cold = Array.from({ length: RUNS }, coldStart)

const col = (pick: (r: Row) => number | undefined): number[] =>
  rows.flatMap((r) => (pick(r) === undefined ? [] : [pick(r) as number]))
const list = (pick: (r: Row) => number | undefined, digits = 2): string =>
  rows.map((r) => pick(r)?.toFixed(digits) ?? '–').join(', ')
const m = {
  targeted: median(col((r) => r.targeted)),
  all: median(col((r) => r.all)),
  runbook: median(col((r) => r.runbook)),
  floor: median(col((r) => r.floor)),
  output: median(col((r) => r.targetedOutput)),
  journalApi: median(col((r) => r.targetedJournalApi)),
  detect: median(col((r) => r.detect)),
  sshReady: median(col((r) => r.sshReady)),
  cold: median(cold)
}
const vsRunbook = m.targeted / m.runbook
const vsFloor = m.targeted / m.floor
const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, docker-compose 1.29.2`
const table = [
  '| measure | median | goal | runs |',
  '| --- | --- | --- | --- |',
  `| API downtime, restart: targeted | ${m.targeted.toFixed(2)} s | | ${list((r) => r.targeted)} |`,
  `| API downtime, restart: all | ${m.all.toFixed(2)} s | | ${list((r) => r.all)} |`,
  `| API downtime, the runbook scripted by hand | ${m.runbook.toFixed(2)} s | | ${list((r) => r.runbook)} |`,
  `| the app's own floor (\`up -d backend\` → first healthy answer) | ${m.floor.toFixed(2)} s | | ${list((r) => r.floor)} |`,
  `| targeted / runbook by hand | ${vsRunbook.toFixed(2)} | ≤ 0.5 ${vsRunbook <= 0.5 ? '(met)' : '(missed)'} | |`,
  `| targeted / the app's floor | ${vsFloor.toFixed(2)} | ≤ 1.3 ${vsFloor <= 1.3 ? '(met)' : '(missed)'} | |`,
  `| targeted: \`downtime-seconds\` output (stop → healthy check) | ${m.output.toFixed(1)} s | | ${list((r) => r.targetedOutput, 1)} |`,
  `| targeted: API downtime from the host journal's own prober | ${m.journalApi.toFixed(2)} s | | ${list((r) => r.targetedJournalApi)} |`,
  `| health detection latency (app up → healthy check) | ${m.detect.toFixed(3)} s | | ${list((r) => r.detect, 3)} |`,
  `| action start → SSH ready | ${m.sshReady.toFixed(3)} s | ≤ 1 s ${m.sshReady <= 1 ? '(met)' : '(missed)'} | ${list((r) => r.sshReady, 3)} |`,
  `| cold start of dist/index.js (to its first exit) | ${m.cold.toFixed(3)} s | | ${cold.map((c) => c.toFixed(3)).join(', ')} |`
].join('\n')
process.stdout.write(`\n${machine}\n${table}\n`)

// CI writes, 3 scopes × 2 keys with 100 ms latency per request (bench/github-writes.ts).
const writes = execFileSync(
  process.execPath,
  [path.join(ROOT, 'node_modules/tsx/dist/cli.mjs'), path.join(ROOT, 'bench/github-writes.ts')],
  {
    encoding: 'utf8'
  }
).trim()
process.stdout.write(`\n${writes}\n`)

const doc = path.join(ROOT, 'docs/BENCHMARKS.md')
const begin = '<!-- rotation-bench:begin -->'
const end = '<!-- rotation-bench:end -->'
let text = readFileSync(doc, 'utf8')
const section = `${begin}\nMeasured ${new Date().toISOString().slice(0, 10)} on ${machine}; median of ${RUNS}; the four downtimes side by side in one run, each from a freshly reset sandbox. ${process.env.BENCH_NOTE ?? ''}\n\n${table}\n\nCI secret writes (\`bench/github-writes.ts\`, goal ≤ 1 s):\n\n\`\`\`\n${writes}\n\`\`\`\n${end}`
text = text.includes(begin)
  ? text.replace(new RegExp(`${begin}[\\s\\S]*${end}`), section)
  : `${text.trimEnd()}\n\n${section}\n`
writeFileSync(doc, text)
process.stdout.write(`\nwritten to docs/BENCHMARKS.md\n`)

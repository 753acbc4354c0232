// One sandbox run, median of RUNS each (default 5):
//   - downtime of the action (down → first healthy check, from its journal)
//     against the same steps run as a plain foreground shell script over SSH
//     (the floor: no journal, no detaching, no lock);
//   - health detection latency: the app's first 200 (seen by a 20 ms prober
//     on loopback) → the host sequence's healthy check;
//   - action start → SSH ready (spawn of dist/index.js → "SSH: connected");
//   - cold start of dist/index.js (to its config error and exit).
// Prints a table and writes docs/BENCHMARKS.md's measured section.
//   npx tsx bench/rotation.ts [--runs N]
import { execFileSync, spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { startSandbox, type Sandbox } from '../sandbox/index.js'
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

function runPlain(sandbox: Sandbox): number {
  const out = execFileSync(
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
    { input: plainScript(sandbox), encoding: 'utf8' }
  )
  return Number(out.trim().split('\n').at(-1)) / 1000
}

/** Polls the app every 20 ms; records when it answers 200 again after being down. */
function probe(url: string): { stop: () => number | undefined } {
  let wasDown = false
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
      if (!ok) wasDown = true
      else if (wasDown && backAt === undefined) backAt = Date.now()
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  void tick()
  return {
    stop: () => {
      running = false
      return backAt
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
const rows: Array<{ plain: number; action: number; detect?: number; sshReady?: number }> = []
try {
  for (let i = 0; i < RUNS; i++) {
    await sandbox.reset()
    const plain = runPlain(sandbox)
    await sandbox.reset()
    const prober = probe(sandbox.urls.health)
    let sshReadyAt: number | undefined
    const spawnedAt = Date.now()
    const run = await runAction(
      sandboxInputs(sandbox, {
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
    const backAt = prober.stop()
    if (run.outputs.result !== 'success')
      throw new Error(`run ${i + 1}: ${run.outputs.result}\n${run.stdout}`)
    const journal = readFileSync(path.join(sandbox.deployPath, '.rotation', 'journal'), 'utf8')
    const healthyAt = Number(
      journal
        .split('\n')
        .find((l) => /\tstep-end\thealth\tok/.test(l))
        ?.split('\t')[0]
    )
    rows.push({
      plain,
      action: Number(run.outputs['downtime-seconds']),
      detect: backAt !== undefined ? (healthyAt - backAt) / 1000 : undefined,
      sshReady: sshReadyAt !== undefined ? (sshReadyAt - spawnedAt) / 1000 : undefined
    })
    process.stdout.write(
      `run ${i + 1}: plain ${plain.toFixed(2)} s, action ${rows[i].action.toFixed(1)} s, detection ${rows[i].detect?.toFixed(3)} s, start→SSH ${rows[i].sshReady?.toFixed(3)} s\n`
    )
  }
} finally {
  await github.stop()
  await sandbox.stop()
}
const cold = Array.from({ length: RUNS }, coldStart)

const m = {
  plain: median(rows.map((r) => r.plain)),
  action: median(rows.map((r) => r.action)),
  detect: median(rows.flatMap((r) => (r.detect === undefined ? [] : [r.detect]))),
  sshReady: median(rows.flatMap((r) => (r.sshReady === undefined ? [] : [r.sshReady]))),
  cold: median(cold)
}
const ratio = m.action / m.plain
const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, docker-compose 1.29.2`
const table = [
  '| measure | median | goal | runs |',
  '| --- | --- | --- | --- |',
  `| downtime, action (down → first healthy check) | ${m.action.toFixed(2)} s | | ${rows.map((r) => r.action.toFixed(1)).join(', ')} |`,
  `| downtime, plain script floor | ${m.plain.toFixed(2)} s | | ${rows.map((r) => r.plain.toFixed(2)).join(', ')} |`,
  `| downtime ratio action / floor | ${ratio.toFixed(2)} | ≤ 1.10 ${ratio <= 1.1 ? '(met)' : '(missed)'} | |`,
  `| health detection latency (app up → healthy check) | ${m.detect.toFixed(3)} s | | ${rows.map((r) => r.detect?.toFixed(3) ?? '–').join(', ')} |`,
  `| action start → SSH ready | ${m.sshReady.toFixed(3)} s | ≤ 1 s ${m.sshReady <= 1 ? '(met)' : '(missed)'} | ${rows.map((r) => r.sshReady?.toFixed(3) ?? '–').join(', ')} |`,
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
const section = `${begin}\nMeasured ${new Date().toISOString().slice(0, 10)} on ${machine}; median of ${RUNS}.\n\n${table}\n\nCI secret writes (\`bench/github-writes.ts\`, goal ≤ 1 s):\n\n\`\`\`\n${writes}\n\`\`\`\n${end}`
text = text.includes(begin)
  ? text.replace(new RegExp(`${begin}[\\s\\S]*${end}`), section)
  : `${text.trimEnd()}\n\n${section}\n`
writeFileSync(doc, text)
process.stdout.write(`\nwritten to docs/BENCHMARKS.md\n`)

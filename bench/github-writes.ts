// Preflight + sealed writes against the GitHub API stand-in with 100 ms of
// latency per request: 3 scopes × 2 keys, median of 5 runs.
//   npx tsx bench/github-writes.ts
// Goal: ≤ 1 s per run (measured, not asserted).

import { randomBytes } from 'node:crypto'
import type { SecretScope } from '../src/config.js'
import { createOctokit } from '../src/github/client.js'
import { preflightSecretScopes, writeSecrets } from '../src/github/secrets.js'
import { startGitHubStandIn } from '../sandbox/github-api/server.js'

const LATENCY_MS = 100
const RUNS = 5
const TOKEN = 'bench-token'
const scopes: SecretScope[] = [
  { kind: 'repository' },
  { kind: 'environment', name: 'production' },
  { kind: 'environment', name: 'staging' }
]
const names = ['JWT_SECRET', 'JWT_REFRESH_SECRET']

const standIn = await startGitHubStandIn({
  owner: 'acme',
  repo: 'cloudbox',
  environments: ['production', 'staging'],
  tokens: { [TOKEN]: ['secrets', 'environments'] }
})
standIn.inject({ latencyMs: LATENCY_MS })

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const ms = (x: number): string => `${Math.round(x)} ms`.padStart(8)

async function bench(label: string, writeSpacingMs?: number): Promise<void> {
  const rows: Array<{ preflight: number; writes: number; total: number }> = []
  for (let run = 0; run < RUNS; run++) {
    const octokit = createOctokit(TOKEN, { baseUrl: standIn.url, writeSpacingMs })
    const t0 = performance.now()
    const keys = await preflightSecretScopes(octokit, 'acme', 'cloudbox', scopes)
    const t1 = performance.now()
    const writes = scopes.flatMap((scope) =>
      names.map((name) => ({ scope, name, value: randomBytes(64).toString('base64') }))
    )
    const result = await writeSecrets(octokit, 'acme', 'cloudbox', keys, writes)
    const t2 = performance.now()
    if (result.failed.length > 0 || result.written.length !== writes.length) {
      throw new Error(`run ${run + 1}: ${result.failed.length} writes failed`)
    }
    rows.push({ preflight: t1 - t0, writes: t2 - t1, total: t2 - t0 })
  }
  const m = {
    preflight: median(rows.map((r) => r.preflight)),
    writes: median(rows.map((r) => r.writes)),
    total: median(rows.map((r) => r.total))
  }
  console.log(`\n${label}`)
  console.log('run  preflight   writes    total')
  rows.forEach((r, i) =>
    console.log(`${String(i + 1).padEnd(3)} ${ms(r.preflight)} ${ms(r.writes)} ${ms(r.total)}`)
  )
  console.log(
    `med ${ms(m.preflight)} ${ms(m.writes)} ${ms(m.total)}   (goal ≤ 1000 ms: ${m.total <= 1000 ? 'met' : 'missed'})`
  )
}

console.log(
  `GitHub preflight + writes: ${scopes.length} scopes × ${names.length} keys, ${LATENCY_MS} ms latency per request, median of ${RUNS}`
)
try {
  await bench('default client (write requests started ≥ 100 ms apart, ≤ 4 in flight)')
  await bench('writeSpacingMs: 0 (concurrency 4 only)', 0)
} finally {
  await standIn.stop()
}

// restart: targeted (the default) against the sandbox deployment: only the
// services that receive a rotated key stop and restart, PostgreSQL never
// stops, and a fault at any step still rolls back.
import { describe, expect, it } from '@jest/globals'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { envValue } from '../../src/host/dotenv.js'
import { runCommand, type ComposeFault } from '../../sandbox/index.js'
import {
  KEYS,
  SCOPES,
  ciSecret,
  expectResult,
  journalOf,
  lastIssue,
  leaks,
  login,
  readablePlaces,
  seedCiSecrets,
  useBed,
  type Bed
} from './helpers.js'

let bed: Bed
useBed((b) => (bed = b))

/** Preflight's read-only calls: the database user and the rolled-back revoke trial. */
const trial = (call: string) => /^exec -T postgres (sh -c printf|psql -X -q )/.test(call)

const UNTOUCHED = [
  'postgres',
  'redis',
  'frontend',
  'glitchtip-postgres',
  'glitchtip',
  'glitchtip-worker'
]

async function docker(args: string[]): Promise<string> {
  const r = await runCommand('docker', args, {
    env: { ...process.env, DOCKER_HOST: bed.sandbox.dockerHost }
  })
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')}: ${r.stderr}`)
  return r.stdout.trim()
}

/** service → container id, for every service container. */
async function containers(): Promise<Record<string, string>> {
  const ids = (await bed.sandbox.compose(['ps', '-q'])).stdout.split('\n').filter(Boolean)
  const lines = await docker([
    'inspect',
    '-f',
    '{{index .Config.Labels "com.docker.compose.service"}} {{.Id}}',
    ...ids
  ])
  return Object.fromEntries(lines.split('\n').map((l) => l.split(' ')))
}

/** The PostgreSQL server process: its start time as the server reports it. */
async function postmasterStart(): Promise<string> {
  return (await bed.sandbox.psql('SELECT pg_postmaster_start_time();')).trim()
}

/** Whether the service's running container has exactly these values in its environment. */
async function runsWith(service: string, values: Record<string, string>): Promise<boolean> {
  const id = (await bed.sandbox.compose(['ps', '-q', service])).stdout.trim()
  const env = JSON.parse(await docker(['inspect', '-f', '{{json .Config.Env}}', id])) as string[]
  return Object.entries(values).every(([k, v]) => env.includes(`${k}=${v}`))
}

function composeCalls(): string[] {
  if (!existsSync(bed.sandbox.composeCallLog)) return []
  return readFileSync(bed.sandbox.composeCallLog, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split('\t').slice(3).join('\t'))
}

function journalSteps(): string[] {
  return journalOf(bed.sandbox)
    .split('\n')
    .filter((l) => l.split('\t')[1] === 'step-end')
    .map((l) => `${l.split('\t')[2]}:${l.split('\t')[3]}`)
}

const valuesOf = (env: string): Record<string, string> =>
  Object.fromEntries(KEYS.map((k) => [k, envValue(env, k) as string]))

describe('restart: targeted, immediate', () => {
  it('restarts backend and worker only; PostgreSQL never stops; old tokens are refused', async () => {
    const { sandbox } = bed
    await seedCiSecrets(bed)
    const old = valuesOf((await sandbox.readEnvFile()).toString('utf8'))
    const session = await login(sandbox, sandbox.user)
    const before = await containers()
    const postmaster = await postmasterStart()

    const run = await bed.rotate({})
    expectResult(run, 'success')

    // Only the targets were stopped and recreated; the database kept running.
    expect(journalSteps()).toEqual(
      ['prepare', 'backup', 'stop', 'swap', 'revoke', 'up', 'health'].map((s) => `${s}:ok`)
    )
    const calls = composeCalls()
    expect(calls.filter((c) => /^(down|stop|up|exec|restart|rm)\b/.test(c) && !trial(c))).toEqual([
      'stop backend worker',
      'up -d backend worker'
    ])
    expect(await postmasterStart()).toBe(postmaster)
    const after = await containers()
    for (const service of UNTOUCHED)
      expect(`${service} ${after[service]}`).toBe(`${service} ${before[service]}`)
    for (const service of ['backend', 'worker']) expect(after[service]).not.toBe(before[service])

    // Backend and worker run on the new secrets; old access and refresh tokens are refused.
    const fresh = valuesOf((await sandbox.readEnvFile()).toString('utf8'))
    for (const key of KEYS) expect(fresh[key] === old[key]).toBe(false)
    expect(await runsWith('backend', fresh)).toBe(true)
    expect(await runsWith('worker', fresh)).toBe(true)
    expect((await sandbox.http('GET', '/api/users/me', { token: session.access })).status).toBe(401)
    expect(
      (await sandbox.http('POST', '/api/auth/refresh', { cookie: session.cookie })).status
    ).toBe(401)
    await login(sandbox, sandbox.user)

    // Every second accounted for: per service stop/start times and the API's downtime.
    const journal = journalOf(sandbox)
    expect(journal).toMatch(/\tservice\tbackend\ttarget\tstopped=\d+ started=\d+/)
    expect(journal).toMatch(/\tservice\tworker\ttarget\tstopped=\d+ started=\d+/)
    expect(journal).not.toMatch(/\tservice\t[^\t]+\tunexpected\t/)
    expect(journal).toMatch(/\tapi\t-\tdown\tat=\d+/)
    expect(journal).toMatch(/\tapi\t-\tup\tat=\d+/)
    expect(run.stdout).toMatch(
      /restart targeted: 2 service\(s\) receive a rotated key and will restart: backend \(environment/
    )
    const issue = lastIssue(bed)
    expect(issue.body).toMatch(/## Services restarted \(restart: targeted\)/)
    expect(issue.body).toMatch(
      /\| `backend` \| environment [^|]*JWT_SECRET[^|]*\| \d\d:\d\d:\d\d\.\d{3} \| \d\d:\d\d:\d\d\.\d{3} \| [\d.]+ s \|/
    )
    expect(issue.body).toMatch(/\| `worker` \|/)
    expect(issue.body).toMatch(/API downtime \(first failed to first healthy probe\): [\d.]+ s/)
    expect(issue.body).toMatch(/\| Restart \| targeted \|/)
    expect(run.summary).toMatch(/Services restarted/)

    for (const scope of SCOPES)
      for (const key of KEYS) expect(ciSecret(bed, scope, key) === fresh[key]).toBe(true)
    expect(
      leaks([...Object.values(old), ...Object.values(fresh)], readablePlaces(bed, run))
    ).toEqual([])
  })

  it('dry-run prints which services will restart and why', async () => {
    const run = await bed.rotate({ 'dry-run': 'true' })
    expectResult(run, 'dry-run')
    expect(run.stdout).toMatch(
      /host: stop: \S+ -f docker-compose\.prod\.yml --env-file \S+\/\.env stop backend worker \(the services that receive a rotated key: backend \(environment/
    )
    expect(run.stdout).toMatch(/host: revoke: docker exec -i <postgres container> psql/)
    expect(composeCalls().filter((c) => /^(down|stop|up|exec)\b/.test(c) && !trial(c))).toEqual([])
  })
})

describe('restart: targeted, graceful', () => {
  it('graceful-services: backend with a compose file where only backend receives _PREVIOUS', async () => {
    const { sandbox } = bed
    // Worker takes the secrets only to pass configuration checks: no _PREVIOUS lines.
    const file = path.join(sandbox.deployPath, sandbox.composeFile)
    const dual = readFileSync(
      path.join(sandbox.deployPath, sandbox.composeFiles.dualSecret),
      'utf8'
    )
    const worker = dual.indexOf('\n  worker:\n')
    const edited =
      dual.slice(0, worker) +
      dual.slice(worker).replace(/ {6}JWT_(REFRESH_)?SECRET_PREVIOUS: .*\n/g, '')
    expect(edited.match(/_PREVIOUS: /g)).toHaveLength(2)
    writeFileSync(file, edited)
    await sandbox.compose(['up', '-d'])
    await seedCiSecrets(bed)

    // By default every service receiving a key must get _PREVIOUS: refused, naming worker.
    const refused = await bed.rotate({ mode: 'graceful' })
    expectResult(refused, 'failed')
    expect(refused.stdout).toMatch(
      /does not pass JWT_SECRET_PREVIOUS to worker, JWT_REFRESH_SECRET_PREVIOUS to worker\./
    )
    expect(refused.stdout).not.toMatch(/PREVIOUS to backend/)

    const old = valuesOf((await sandbox.readEnvFile()).toString('utf8'))
    const session = await login(sandbox, sandbox.user)
    const before = await containers()
    const postmaster = await postmasterStart()
    const run = await bed.rotate({ mode: 'graceful', 'graceful-services': 'backend' })
    expectResult(run, 'success')

    expect(journalSteps()).toEqual(
      ['prepare', 'backup', 'swap', 'up', 'health'].map((s) => `${s}:ok`)
    )
    expect(composeCalls().filter((c) => /^(down|stop|up|exec|restart|rm)\b/.test(c))).toEqual([
      'up -d backend worker'
    ])
    expect(await postmasterStart()).toBe(postmaster)
    const after = await containers()
    for (const service of UNTOUCHED)
      expect(`${service} ${after[service]}`).toBe(`${service} ${before[service]}`)
    for (const service of ['backend', 'worker']) expect(after[service]).not.toBe(before[service])

    // Nobody is logged out; both services run on the new secrets, backend with the previous ones too.
    const fresh = valuesOf((await sandbox.readEnvFile()).toString('utf8'))
    const previous = Object.fromEntries(KEYS.map((k) => [`${k}_PREVIOUS`, old[k]]))
    expect(await runsWith('backend', { ...fresh, ...previous })).toBe(true)
    expect(await runsWith('worker', fresh)).toBe(true)
    expect((await sandbox.http('GET', '/api/users/me', { token: session.access })).status).toBe(200)
    expect(
      (await sandbox.http('POST', '/api/auth/refresh', { cookie: session.cookie })).status
    ).toBe(200)
    expect(journalOf(sandbox)).toMatch(/\tservice\tbackend\ttarget\t/)
    expect(
      leaks([...Object.values(old), ...Object.values(fresh)], readablePlaces(bed, run))
    ).toEqual([])
  })
})

describe('restart: targeted, a fault at each step', () => {
  const cases: Array<[string, ComposeFault[] | null, Record<string, string>]> = [
    ['stop', [{ match: '^stop', action: 'fail', times: 1 }], {}],
    // The staged .env disappears while the targets stop: the swap itself fails.
    [
      'swap',
      [{ match: '^stop', action: 'run-then-exec', command: 'rm -f .rotation/env.new', times: 1 }],
      {}
    ],
    // Passes preflight's rolled-back trial (statement_timeout 15s there), fails for real.
    [
      'revoke',
      null,
      {
        'revoke-sql':
          "DELETE FROM refresh_tokens; SELECT 1 / (current_setting('statement_timeout') = '15s')::int;"
      }
    ],
    ['up', [{ match: '^up -d backend worker$', action: 'fail', times: 1 }], {}],
    ['health', null, { 'health-timeout': '8' }]
  ]

  it.each(cases)(
    '%s rolls back: targets stopped, .env restored, up -d, healthy',
    async (step, faults, overrides) => {
      const { sandbox } = bed
      const ci = await seedCiSecrets(bed)
      const envBefore = await sandbox.readEnvFile()
      const session = await login(sandbox, sandbox.user)
      const before = await containers()
      const postmaster = await postmasterStart()
      if (faults) await sandbox.setComposeFaults(faults)
      if (step === 'health')
        await sandbox.setAppHealthyOnlyWithSecret(
          envValue(envBefore.toString('utf8'), 'JWT_SECRET') as string
        )

      const run = await bed.rotate(overrides)
      expectResult(run, 'rolled-back')

      const journal = journalOf(sandbox)
      expect(journal).toMatch(new RegExp(`\\tstep-end\\t${step}\\tfail\\t`))
      expect(journal).toMatch(/\tstep-end\trollback-stop\tok\t/)
      expect(journal).toMatch(/\tstep-end\trollback-health\tok\t/)
      expect((await sandbox.readEnvFile()).equals(envBefore)).toBe(true)
      expect((await sandbox.http('GET', '/api/users/me', { token: session.access })).status).toBe(
        200
      )
      expect(await postmasterStart()).toBe(postmaster)
      const after = await containers()
      for (const service of UNTOUCHED)
        expect(`${service} ${after[service]}`).toBe(`${service} ${before[service]}`)
      for (const scope of SCOPES)
        for (const key of KEYS) expect(ciSecret(bed, scope, key)).toBe(ci[key])
      expect(lastIssue(bed).title).toMatch(/: rolled-back$/)
    }
  )

  it('prepare fails before any change: nothing stopped, nothing changed', async () => {
    const { sandbox } = bed
    const ci = await seedCiSecrets(bed)
    const envBefore = await sandbox.readEnvFile()
    const before = await containers()
    await sandbox.setComposeFaults([{ match: '^ps -q', action: 'fail' }])
    const run = await bed.rotate({})
    expectResult(run, 'failed')
    expect(journalOf(sandbox)).toMatch(/\tstep-end\tprepare\tfail\t/)
    expect(journalOf(sandbox)).toMatch(/\tresult\t-\taborted\t/)
    expect(composeCalls().filter((c) => /^(down|stop|up)\b/.test(c))).toEqual([])
    expect((await sandbox.readEnvFile()).equals(envBefore)).toBe(true)
    expect(await containers()).toEqual(before)
    for (const scope of SCOPES)
      for (const key of KEYS) expect(ciSecret(bed, scope, key)).toBe(ci[key])
    expect(run.stdout).toMatch(/production untouched/)
  })
})

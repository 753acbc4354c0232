// The other modes against the sandbox deployment: graceful (zero logout),
// retire-previous, and recover (a host left mid-rotation).
import { describe, expect, it } from '@jest/globals'
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { envValue } from '../../src/host/dotenv.js'
import { runCommand } from '../../sandbox/index.js'
import type { ActionRun } from '../../sandbox/run-action.js'
import {
  KEYS,
  SCOPES,
  ciSecret,
  expectOnlyKeysChanged,
  expectResult,
  journalOf,
  lastIssue,
  leaks,
  readablePlaces,
  login,
  seedCiSecrets,
  useBed,
  type Bed
} from './helpers.js'

let bed: Bed
useBed((b) => (bed = b))

const rotationDir = (): string => path.join(bed.sandbox.deployPath, '.rotation')

/** The compose sub-commands the wrapper saw (match strings: global options dropped). */
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

async function postgresContainer(): Promise<string> {
  const id = (await bed.sandbox.compose(['ps', '-q', 'postgres'])).stdout.trim()
  const inspect = await runCommand(
    'docker',
    ['inspect', '-f', '{{.Id}} {{.State.StartedAt}}', id],
    {
      env: { ...process.env, DOCKER_HOST: bed.sandbox.dockerHost }
    }
  )
  expect(inspect.code).toBe(0)
  return inspect.stdout.trim()
}

/** `before` with each key's value replaced and `<KEY>_PREVIOUS=<old>` on the next line. */
function gracefulEnv(
  before: string,
  newValues: Record<string, string>,
  oldValues: Record<string, string>
): string {
  const out: string[] = []
  for (const line of before.split('\n')) {
    const key = KEYS.find((k) => line.startsWith(`${k}=`))
    if (key === undefined) out.push(line)
    else out.push(`${key}=${newValues[key]}`, `${key}_PREVIOUS=${oldValues[key]}`)
  }
  return out.join('\n')
}

function valuesOf(env: string): Record<string, string> {
  return Object.fromEntries(KEYS.map((k) => [k, envValue(env, k) as string]))
}

/** No value, nor any 20-character piece of one, anywhere a person reads. */
function expectNoLeak(run: ActionRun, values: string[]): void {
  expect(leaks(values, readablePlaces(bed, run))).toEqual([])
}

/** Asserts a refused run changed nothing anywhere and reported the refusal. */
async function expectNothingChanged(
  run: ActionRun,
  envBefore: Buffer,
  ci: Record<string, string>,
  writesBefore: number,
  message: RegExp
): Promise<void> {
  expectResult(run, 'failed')
  expect(run.code).not.toBe(0)
  expect(run.stdout).toMatch(message)
  expect((await bed.sandbox.readEnvFile()).equals(envBefore)).toBe(true)
  expect(bed.github.secretWrites.length).toBe(writesBefore)
  for (const scope of SCOPES)
    for (const key of KEYS) expect(ciSecret(bed, scope, key)).toBe(ci[key])
  expect(composeCalls().filter((c) => /^(up|down|stop|rm|restart|exec)\b/.test(c))).toEqual([])
  expect(existsSync(path.join(rotationDir(), 'lock'))).toBe(false)
  expect(existsSync(path.join(rotationDir(), 'journal'))).toBe(false)
  const issue = lastIssue(bed)
  expect(issue.title).toMatch(/: failed$/)
  expect(issue.body).toMatch(/Refused by preflight: nothing was changed/)
  expect(issue.body).toMatch(message)
}

describe('graceful', () => {
  it('rotates with no logout: old access and refresh tokens stay valid, no down', async () => {
    const { sandbox } = bed
    const old = await seedCiSecrets(bed)
    const envBefore = (await sandbox.readEnvFile()).toString('utf8')
    const session = await login(sandbox, sandbox.user)
    const postgresBefore = await postgresContainer()

    const run = await bed.rotate({ mode: 'graceful' })
    expectResult(run, 'success')
    expect(run.code).toBe(0)

    // Nobody is logged out: the pre-rotation tokens verify against *_PREVIOUS.
    expect((await sandbox.http('GET', '/api/users/me', { token: session.access })).status).toBe(200)
    const refreshed = await sandbox.http('POST', '/api/auth/refresh', { cookie: session.cookie })
    expect(refreshed.status).toBe(200)
    // The refreshed access token is signed with the new secret.
    expect(
      (await sandbox.http('GET', '/api/users/me', { token: refreshed.body.accessToken })).status
    ).toBe(200)

    // No down, no revoke, postgres untouched; services recreated by up -d.
    const calls = composeCalls()
    expect(calls.filter((c) => /^down\b/.test(c))).toEqual([])
    expect(calls.filter((c) => /^exec -T postgres psql/.test(c))).toEqual([])
    expect(calls).toContain('up -d backend worker')
    expect(journalSteps()).toEqual(
      ['prepare', 'backup', 'swap', 'up', 'health'].map((s) => `${s}:ok`)
    )
    expect(journalOf(sandbox)).toMatch(/\tresult\t-\tsuccess\t/)
    expect(await postgresContainer()).toBe(postgresBefore)

    // .env: new values, the old ones as <KEY>_PREVIOUS on the very next line, nothing else.
    const envAfter = (await sandbox.readEnvFile()).toString('utf8')
    const fresh = valuesOf(envAfter)
    for (const key of KEYS) {
      expect(fresh[key]).not.toBe(old[key])
      expect(envValue(envAfter, `${key}_PREVIOUS`)).toBe(old[key])
    }
    expect(envAfter).toBe(gracefulEnv(envBefore, fresh, old))
    // Backup as in immediate mode.
    expect(readFileSync(run.outputs['backup-path'], 'utf8')).toBe(envBefore)

    // CI secrets hold the new values.
    for (const scope of SCOPES)
      for (const key of KEYS) expect(ciSecret(bed, scope, key)).toBe(fresh[key])
    expect(JSON.parse(run.outputs['updated-secrets'])).toHaveLength(KEYS.length * SCOPES.length)
    expect(Number(run.outputs['downtime-seconds'])).toBeGreaterThan(0)

    // The issue says graceful and when *_PREVIOUS may be retired: refresh tokens live 7 days,
    // counted from when the host recreated the services (the journal's up step-end, host clock).
    const upEnded = journalOf(bed.sandbox)
      .split('\n')
      .map((l) => l.split('\t'))
      .filter((f) => f[1] === 'step-end' && f[2] === 'up')
      .map((f) => Number(f[0]))
      .at(-1) as number
    const retireAfter = new Date(upEnded + 7 * 86400000).toISOString()
    const issue = lastIssue(bed)
    expect(issue.title).toMatch(/: success$/)
    expect(issue.body).toMatch(/\| Mode \| `?graceful`? \|/)
    expect(issue.body).toContain('retire-previous')
    expect(issue.body).toContain(retireAfter)
    expect(issue.body).toContain('JWT_REFRESH_EXPIRES_IN=7d')
    expect(issue.body).toContain('- [x] Verify regular user can login')
    expect(issue.body).toContain('- [x] Check error logs for JWT-related errors')
    expectNoLeak(run, [...Object.values(old), ...Object.values(fresh)])
  })

  it('replaces an earlier <KEY>_PREVIOUS on a second graceful rotation', async () => {
    const { sandbox } = bed
    const quiet = { mode: 'graceful', 'admin-credentials': '', 'user-credentials': '' }
    const original = valuesOf((await sandbox.readEnvFile()).toString('utf8'))
    expectResult(await bed.rotate(quiet), 'success')
    const envFirst = (await sandbox.readEnvFile()).toString('utf8')
    const first = valuesOf(envFirst)
    expectResult(await bed.rotate(quiet), 'success')
    const envSecond = (await sandbox.readEnvFile()).toString('utf8')
    const second = valuesOf(envSecond)
    for (const key of KEYS) {
      expect(second[key]).not.toBe(first[key])
      expect(envSecond.split('\n').filter((l) => l.startsWith(`${key}_PREVIOUS=`))).toEqual([
        `${key}_PREVIOUS=${first[key]}`
      ])
      expect(envSecond).not.toContain(original[key])
    }
    expect(envSecond.split('\n')).toHaveLength(envFirst.split('\n').length)
  })

  it('is refused, changing nothing, when the compose file does not pass <KEY>_PREVIOUS', async () => {
    const { sandbox } = bed
    const ci = await seedCiSecrets(bed)
    const envBefore = await sandbox.readEnvFile()
    const writesBefore = bed.github.secretWrites.length
    const variableBefore = bed.github.variables.get('JWT_SECRETS_ROTATED_AT')
    const run = await bed.rotate({
      mode: 'graceful',
      'compose-file': path.basename(sandbox.composeFiles.singleSecret)
    })
    await expectNothingChanged(
      run,
      envBefore,
      ci,
      writesBefore,
      /does not pass JWT_SECRET_PREVIOUS to backend/
    )
    expect(run.stdout).toMatch(/JWT_REFRESH_SECRET_PREVIOUS to (backend|worker)/)
    expect(run.stdout).toMatch(/JWT_SECRET_PREVIOUS to worker/)
    expect(bed.github.variables.get('JWT_SECRETS_ROTATED_AT')).toBe(variableBefore)
  })
})

describe('retire-previous', () => {
  it('removes the *_PREVIOUS lines after graceful; old tokens die; no CI writes', async () => {
    const { sandbox } = bed
    await seedCiSecrets(bed)
    const envBefore = (await sandbox.readEnvFile()).toString('utf8')
    const session = await login(sandbox, sandbox.user)
    expectResult(await bed.rotate({ mode: 'graceful' }), 'success')
    const fresh = valuesOf((await sandbox.readEnvFile()).toString('utf8'))
    const writesBefore = bed.github.secretWrites.length
    const variableBefore = bed.github.variables.get('JWT_SECRETS_ROTATED_AT')
    const issuesBefore = bed.github.issues.length

    const run = await bed.rotate({ mode: 'retire-previous' })
    expectResult(run, 'success')
    expect(run.code).toBe(0)

    // The file is the pre-graceful one with only the rotated values changed.
    const envAfter = (await sandbox.readEnvFile()).toString('utf8')
    expect(envAfter).not.toMatch(/_PREVIOUS=/)
    expectOnlyKeysChanged(envBefore, envAfter, KEYS)
    expect(valuesOf(envAfter)).toEqual(fresh)
    expect(readFileSync(run.outputs['backup-path'], 'utf8')).toMatch(/JWT_SECRET_PREVIOUS=/)

    // No secret rotated, none written, the rotation date left alone.
    expect(bed.github.secretWrites.length).toBe(writesBefore)
    expect(JSON.parse(run.outputs['updated-secrets'])).toEqual([])
    for (const scope of SCOPES)
      for (const key of KEYS) expect(ciSecret(bed, scope, key)).toBe(fresh[key])
    expect(bed.github.variables.get('JWT_SECRETS_ROTATED_AT')).toBe(variableBefore)

    // Services recreated without down; the old secret is no longer accepted.
    expect(composeCalls().filter((c) => /^down\b/.test(c))).toEqual([])
    expect(journalSteps()).toEqual(
      ['prepare', 'backup', 'swap', 'up', 'health'].map((s) => `${s}:ok`)
    )
    expect((await sandbox.http('GET', '/api/users/me', { token: session.access })).status).toBe(401)
    expect((await sandbox.http('GET', '/api/health/ping')).status).toBe(200)

    expect(bed.github.issues.length).toBe(issuesBefore + 1)
    const issue = lastIssue(bed)
    expect(issue.title).toMatch(/: success$/)
    expect(issue.body).toMatch(/retire-previous/)
    expectNoLeak(run, [...Object.values(valuesOf(envBefore)), ...Object.values(fresh)])
  })

  it('is refused when there is no *_PREVIOUS line', async () => {
    const ci = await seedCiSecrets(bed)
    const envBefore = await bed.sandbox.readEnvFile()
    const run = await bed.rotate({ mode: 'retire-previous' })
    await expectNothingChanged(
      run,
      envBefore,
      ci,
      bed.github.secretWrites.length,
      /nothing to retire/
    )
  })
})

/** The pid and every descendant (compose runs under `timeout`, in its own process group). */
function processTree(root: number): number[] {
  const children = new Map<number, number[]>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)])
    } catch {
      // gone meanwhile
    }
  }
  const tree: number[] = []
  const queue = [root]
  while (queue.length > 0) {
    const pid = queue.shift() as number
    tree.push(pid)
    queue.push(...(children.get(pid) ?? []))
  }
  return tree
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 90000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe('recover', () => {
  it('restores a host whose sequence died right after down', async () => {
    const { sandbox } = bed
    const old = await seedCiSecrets(bed)
    const envBefore = await sandbox.readEnvFile()
    const session = await login(sandbox, sandbox.user)

    const journalFile = path.join(rotationDir(), 'journal')
    const downDone = (): boolean => {
      try {
        return /\tstep-end\tdown\tok\t/.test(readFileSync(journalFile, 'utf8'))
      } catch {
        return false
      }
    }
    // The host dies right after `down`: the sequence and everything it started.
    const interrupted = bed.rotate({ restart: 'all' })
    await waitFor('the down step', downDone)
    const pid = Number(readFileSync(path.join(rotationDir(), 'lock', 'pid'), 'utf8').trim())
    expect(pid).toBeGreaterThan(1)
    for (const p of processTree(pid)) {
      try {
        process.kill(p, 'SIGKILL')
      } catch {
        // already gone
      }
    }
    const lost = await interrupted
    expectResult(lost, 'failed')
    expect(lost.code).not.toBe(0)
    expect(journalOf(sandbox)).not.toMatch(/\tresult\t/)
    // CI secrets hold the new values now; the host is down.
    const interruptedValues = KEYS.map((k) => ciSecret(bed, 'repository', k) as string)
    for (const key of KEYS) expect(ciSecret(bed, 'repository', key)).not.toBe(old[key])
    expect(existsSync(path.join(rotationDir(), 'lock'))).toBe(true)

    // A normal run refuses and points at recover.
    const refused = await bed.rotate({})
    expectResult(refused, 'failed')
    expect(refused.stdout).toMatch(/interrupted[\s\S]*recover: true/)

    const run = await bed.rotate({ recover: 'true' })
    expectResult(run, 'recovered')
    expect(run.code).toBe(0)

    // Back on the old secrets: .env is the pre-rotation bytes, old tokens work.
    expect((await sandbox.readEnvFile()).equals(envBefore)).toBe(true)
    expect((await sandbox.http('GET', '/api/health/ping')).status).toBe(200)
    expect((await sandbox.http('GET', '/api/users/me', { token: session.access })).status).toBe(200)
    expect(journalSteps()).toEqual(['recover-restore', 'up', 'health'].map((s) => `${s}:ok`))
    expect(journalOf(sandbox)).toMatch(/\tresult\t-\trecovered\t/)
    expect(existsSync(path.join(rotationDir(), 'lock'))).toBe(false)
    // The backup it restored is the interrupted run's.
    const restored = lost.outputs['backup-path']
    expect(restored).toMatch(/\/\.env\.backup\.\d{8}T\d{6}Z$/)

    // CI secrets aligned with the restored .env.
    for (const scope of SCOPES)
      for (const key of KEYS) expect(ciSecret(bed, scope, key)).toBe(old[key])

    const issue = lastIssue(bed)
    expect(issue.title).toMatch(/: recovered$/)
    expect(issue.body).toMatch(/Recovery run/)
    expect(issue.body).toContain(`restored from ${restored}`)
    expectNoLeak(run, [...Object.values(old), ...interruptedValues])
    expect(issue.body).toContain('- [x] Verify regular user can login')

    // Afterwards a normal rotation runs again.
    const next = await bed.rotate({ 'admin-credentials': '', 'user-credentials': '' })
    expectResult(next, 'success')
  })

  it('keeps .env when the interrupted run died before its backup: no older backup is restored', async () => {
    const { sandbox } = bed
    // An earlier rotation leaves a backup of older values behind.
    expectResult(await bed.rotate({ 'admin-credentials': '', 'user-credentials': '' }), 'success')
    const current = await sandbox.readEnvFile()
    const values = valuesOf(current.toString('utf8'))
    const session = await login(sandbox, sandbox.user)
    // The next run's host died while taking its backup: .env is untouched.
    const now = Date.now()
    writeFileSync(
      path.join(rotationDir(), 'journal'),
      `${now}\trun-start\t-\timmediate\tpid=2147483646 run=dead\n${now + 5}\tstep-start\tbackup\t-\t\n`
    )
    mkdirSync(path.join(rotationDir(), 'lock'), { mode: 0o700 })
    writeFileSync(path.join(rotationDir(), 'lock', 'holder'), 'run=dead\n')
    writeFileSync(path.join(rotationDir(), 'lock', 'pid'), '2147483646\n')

    const run = await bed.rotate({ recover: 'true' })
    expectResult(run, 'recovered')
    expect((await sandbox.readEnvFile()).equals(current)).toBe(true)
    expect((await sandbox.http('GET', '/api/users/me', { token: session.access })).status).toBe(200)
    for (const scope of SCOPES)
      for (const key of KEYS) expect(ciSecret(bed, scope, key)).toBe(values[key])
    expect(journalSteps()).toEqual(['recover-restore', 'up', 'health'].map((s) => `${s}:ok`))
    expect(lastIssue(bed).body).toMatch(/kept \(the interrupted run died before its backup/)
  })

  it('refuses, changing nothing, when there is nothing to recover', async () => {
    const ci = await seedCiSecrets(bed)
    const envBefore = await bed.sandbox.readEnvFile()
    const run = await bed.rotate({ recover: 'true' })
    await expectNothingChanged(
      run,
      envBefore,
      ci,
      bed.github.secretWrites.length,
      /nothing to recover/
    )
  })

  it('refuses after a completed rotation too', async () => {
    expectResult(await bed.rotate({ 'admin-credentials': '', 'user-credentials': '' }), 'success')
    const ci = await seedCiSecrets(bed)
    const envBefore = await bed.sandbox.readEnvFile()
    const journalBefore = journalOf(bed.sandbox)
    const writesBefore = bed.github.secretWrites.length
    const run = await bed.rotate({ recover: 'true' })
    expectResult(run, 'failed')
    expect(run.stdout).toMatch(
      /nothing to recover: the last rotation journal on the host is complete/
    )
    expect((await bed.sandbox.readEnvFile()).equals(envBefore)).toBe(true)
    expect(bed.github.secretWrites.length).toBe(writesBefore)
    for (const scope of SCOPES)
      for (const key of KEYS) expect(ciSecret(bed, scope, key)).toBe(ci[key])
    expect(journalOf(bed.sandbox)).toBe(journalBefore)
    expect(existsSync(path.join(rotationDir(), 'lock'))).toBe(false)
  })
})

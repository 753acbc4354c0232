// What must never happen: a killed action leaving production down, two
// rotations at once, a change after a failed preflight.
import { describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync
} from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { envValue } from '../../src/host/dotenv.js'
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

async function waitFor(what: string, check: () => boolean, timeoutMs = 90000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

const terminal = (): boolean => {
  try {
    return /\tresult\t/.test(journalOf(bed.sandbox))
  } catch {
    return false
  }
}

/** Runs a rotation that preflight must refuse; proves nothing changed anywhere. */
async function expectRefusal(overrides: Record<string, string>, message: RegExp): Promise<string> {
  const envBefore = await bed.sandbox.readEnvFile()
  const writesBefore = bed.github.secretWrites.length
  const variableBefore = bed.github.variables.get('JWT_SECRETS_ROTATED_AT')
  const run = await bed.rotate(overrides)
  expectResult(run, 'failed')
  expect(run.code).not.toBe(0)
  expect(run.stdout).toMatch(message)
  expect(bed.github.secretWrites.length).toBe(writesBefore)
  expect(bed.github.variables.get('JWT_SECRETS_ROTATED_AT')).toBe(variableBefore)
  expect((await bed.sandbox.readEnvFile()).equals(envBefore)).toBe(true)
  expect(JSON.parse(run.outputs['updated-secrets'])).toEqual([])
  expect((await bed.sandbox.http('GET', '/api/health/ping')).status).toBe(200)
  const issue = lastIssue(bed)
  expect(issue.title).toMatch(/: failed$/)
  expect(issue.body).toMatch(/nothing was changed/i)
  return run.stdout
}

describe('a cancelled or killed action', () => {
  it('SIGKILL right after down: the host finishes by itself and the next run works', async () => {
    await seedCiSecrets(bed)
    const envBefore = (await bed.sandbox.readEnvFile()).toString('utf8')
    const run = await bed.rotate(
      { restart: 'all' },
      { signalWhen: { pattern: /✔ down/, signal: 'SIGKILL' } }
    )
    expect(run.signal).toBe('SIGKILL')
    await waitFor('the host sequence to finish', terminal)
    expect(journalOf(bed.sandbox)).toMatch(/\tresult\t-\tsuccess\t/)
    const envAfter = (await bed.sandbox.readEnvFile()).toString('utf8')
    for (const key of KEYS) {
      expect(envValue(envAfter, key)).not.toBe(envValue(envBefore, key))
      // CI was written before the host: both hold the new value.
      for (const scope of SCOPES) expect(ciSecret(bed, scope, key)).toBe(envValue(envAfter, key))
    }
    expect((await bed.sandbox.http('GET', '/api/health/ping')).status).toBe(200)
    expect(existsSync(path.join(bed.sandbox.deployPath, '.rotation', 'lock'))).toBe(false)

    const next = await bed.rotate({ 'admin-credentials': '', 'user-credentials': '' })
    expectResult(next, 'success')
  })

  it('SIGTERM (cancel) while the host runs: the action exits, the host completes', async () => {
    await bed.sandbox.setComposeFaults([{ match: '^up -d$', action: 'slow', seconds: 3 }])
    const run = await bed.rotate(
      { restart: 'all' },
      { signalWhen: { pattern: /▶ up-postgres/, signal: 'SIGTERM' } }
    )
    expectResult(run, 'failed')
    expect(run.stdout).toMatch(/goes on by itself/)
    await waitFor('the host sequence to finish', terminal)
    expect(journalOf(bed.sandbox)).toMatch(/\tresult\t-\tsuccess\t/)
    expect((await bed.sandbox.http('GET', '/api/health/ping')).status).toBe(200)
    expect(lastIssue(bed).body).toMatch(/goes on by itself/)
  })
})

describe('locking', () => {
  it('two runs at once: the second refuses and changes nothing', async () => {
    await bed.sandbox.setComposeFaults([{ match: '^down', action: 'slow', seconds: 4 }])
    let firstStarted = false
    const first = bed.rotate(
      { 'admin-credentials': '', 'user-credentials': '', restart: 'all' },
      { onStdout: (text) => (firstStarted ||= /Host sequence started/.test(text)) }
    )
    await waitFor('the first run to start its host sequence', () => firstStarted)
    const writesBefore = bed.github.secretWrites.length
    const second = await bed.rotate({ 'admin-credentials': '', 'user-credentials': '' })
    expectResult(second, 'failed')
    expect(second.stdout).toMatch(/another rotation/)
    expect(bed.github.secretWrites.length).toBe(writesBefore)
    expect(JSON.parse(second.outputs['updated-secrets'])).toEqual([])
    expectResult(await first, 'success')
  })

  it('a stale lock is reported with its holder and age, never broken', async () => {
    const lock = path.join(bed.sandbox.deployPath, '.rotation', 'lock')
    mkdirSync(lock, { recursive: true })
    writeFileSync(
      path.join(lock, 'holder'),
      'run=4242-1-dead00\nstarted=2026-01-01T00:00:00Z\nby=mallory\n'
    )
    // Without a pid the holder is an action between preflight and launch:
    // live for 15 minutes, then stale.
    const hourAgo = new Date(Date.now() - 3600 * 1000)
    utimesSync(lock, hourAgo, hourAgo)
    const stdout = await expectRefusal({}, /stale rotation lock/)
    expect(stdout).toContain('run=4242-1-dead00')
    expect(existsSync(lock)).toBe(true)
  })

  it('a fresh lock without a pid (a run writing CI secrets) is live: never called stale', async () => {
    const lock = path.join(bed.sandbox.deployPath, '.rotation', 'lock')
    mkdirSync(lock, { recursive: true })
    writeFileSync(path.join(lock, 'holder'), 'run=4343-1-busy00\nstarted=now\nby=alice\n')
    const stdout = await expectRefusal({}, /another rotation holds the lock/)
    expect(stdout).not.toMatch(/stale rotation lock|rm -r/)
    expect(existsSync(lock)).toBe(true)
  })

  it('an interrupted run is refused with a pointer to recover', async () => {
    const rotation = path.join(bed.sandbox.deployPath, '.rotation')
    mkdirSync(path.join(rotation, 'lock'), { recursive: true })
    writeFileSync(path.join(rotation, 'lock', 'pid'), '999999\n')
    writeFileSync(
      path.join(rotation, 'journal'),
      `${Date.now()}\trun-start\t-\timmediate\tpid=999999\n${Date.now()}\tstep-start\tdown\t-\t\n`
    )
    await expectRefusal({}, /interrupted[\s\S]*recover: true/)
  })
})

describe('preflight refuses before any change', () => {
  it('a wrong host key', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'otherkey-'))
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'k')])
    const other = readFileSync(path.join(dir, 'k.pub'), 'utf8').split(' ').slice(0, 2).join(' ')
    rmSync(dir, { recursive: true })
    const stdout = await expectRefusal(
      { 'ssh-known-hosts': `[127.0.0.1]:${bed.sandbox.ssh.port} ${other}` },
      /host key mismatch/
    )
    expect(stdout).toContain(bed.sandbox.ssh.fingerprint)
  })

  it('a wrong fingerprint', async () => {
    await expectRefusal(
      { 'ssh-known-hosts': '', 'ssh-fingerprint': `SHA256:${'A'.repeat(43)}` },
      /host key mismatch/
    )
  })

  it('no host key pin at all', async () => {
    const writesBefore = bed.github.secretWrites.length
    const run = await bed.rotate({ 'ssh-known-hosts': '' })
    expectResult(run, 'failed')
    expect(run.stdout).toMatch(/must be pinned/)
    expect(bed.github.secretWrites.length).toBe(writesBefore)
  })

  it('a key missing from .env', async () => {
    await expectRefusal({ keys: 'JWT_SECRET,SESSION_SECRET' }, /has no SESSION_SECRET= line/)
  })

  it('an empty ENCRYPTION_KEY', async () => {
    const envPath = path.join(bed.sandbox.deployPath, '.env')
    const text = readFileSync(envPath, 'utf8').replace(/^ENCRYPTION_KEY=.*$/m, 'ENCRYPTION_KEY=')
    writeFileSync(envPath, text, { mode: 0o600 })
    await expectRefusal({}, /no non-empty ENCRYPTION_KEY/)
  })

  it('a missing compose file', async () => {
    await expectRefusal(
      { 'compose-file': 'docker-compose.missing.yml' },
      /compose file .*docker-compose\.missing\.yml does not exist/
    )
  })

  it('a missing deploy dir', async () => {
    await expectRefusal({ 'deploy-path': '/nonexistent/cloudbox' }, /does not exist on the host/)
  })

  it('an unreachable host', async () => {
    await expectRefusal(
      { 'ssh-port': '1', 'ssh-known-hosts': '', 'ssh-fingerprint': bed.sandbox.ssh.fingerprint },
      /connection refused/
    )
  })

  it('a token that cannot write secrets', async () => {
    await expectRefusal({ 'secrets-token': 'github_pat_sandbox_nothing' }, /"Secrets"/)
  })

  it('an issue token that is rejected', async () => {
    const writesBefore = bed.github.secretWrites.length
    const issuesBefore = bed.github.issues.length
    const envBefore = await bed.sandbox.readEnvFile()
    const run = await bed.rotate({ 'github-token': 'ghs_revoked' })
    expectResult(run, 'failed')
    expect(run.stdout).toMatch(/github-token was rejected/)
    expect(bed.github.secretWrites.length).toBe(writesBefore)
    expect(bed.github.issues.length).toBe(issuesBefore)
    expect((await bed.sandbox.readEnvFile()).equals(envBefore)).toBe(true)
    expect(run.summary).toMatch(/nothing was changed/i)
  })

  it('an environment that does not exist', async () => {
    await expectRefusal({ environments: 'production,qa' }, /environment qa does not exist/)
  })
})

describe('dry run', () => {
  it('prints the plan and changes nothing, opens no issue', async () => {
    const envBefore = await bed.sandbox.readEnvFile()
    const issuesBefore = bed.github.issues.length
    const writesBefore = bed.github.secretWrites.length
    const run = await bed.rotate({ 'dry-run': 'true', restart: 'all' })
    expectResult(run, 'dry-run')
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(
      /host: down: \S+ -f docker-compose\.prod\.yml --env-file \S+\/\.env down/
    )
    expect(run.stdout).toMatch(
      /write CI secrets JWT_SECRET, JWT_REFRESH_SECRET in environment:production/
    )
    expect(bed.github.issues.length).toBe(issuesBefore)
    expect(bed.github.secretWrites.length).toBe(writesBefore)
    expect((await bed.sandbox.readEnvFile()).equals(envBefore)).toBe(true)
    expect(existsSync(path.join(bed.sandbox.deployPath, '.rotation', 'lock'))).toBe(false)
    expect(existsSync(path.join(bed.sandbox.deployPath, '.rotation', 'journal'))).toBe(false)
    expect(run.summary).toContain('dry')
  })
})

describe('the database is proven reachable in preflight', () => {
  const backendId = async () => (await bed.sandbox.compose(['ps', '-q', 'backend'])).stdout.trim()

  it.each([
    ['a wrong postgres-user', { 'postgres-user': 'nobody_here' }, /as user "nobody_here"/],
    ['a wrong postgres-db', { 'postgres-db': 'no_such_db' }, /against database "no_such_db"/],
    ['a typo in revoke-sql', { 'revoke-sql': 'DELETE FROM refresh_tokenz;' }, /refresh_tokenz/]
  ])('%s is refused before anything stops', async (_what, overrides, detail) => {
    await seedCiSecrets(bed)
    const before = await backendId()
    const stdout = await expectRefusal(overrides, /the revoke SQL failed in a trial run/)
    expect(stdout).toMatch(detail)
    expect(await backendId()).toBe(before)
  })

  it('the trial DELETE of a dry run is rolled back: nobody is logged out', async () => {
    await login(bed.sandbox, bed.sandbox.admin)
    const count = async () =>
      Number((await bed.sandbox.psql('SELECT count(*) FROM refresh_tokens;')).trim())
    const before = await count()
    expect(before).toBeGreaterThan(0)
    const run = await bed.rotate({ 'dry-run': 'true' })
    expectResult(run, 'dry-run')
    expect(await count()).toBe(before)
  })
})

describe('the compose project that runs', () => {
  it('a COMPOSE_PROJECT_NAME naming another project is refused: nothing of it runs', async () => {
    const envPath = path.join(bed.sandbox.deployPath, '.env')
    writeFileSync(envPath, `${readFileSync(envPath, 'utf8')}COMPOSE_PROJECT_NAME=not_cloudbox\n`)
    await seedCiSecrets(bed)
    const stdout = await expectRefusal({}, /has no container on the host/)
    expect(stdout).toMatch(/COMPOSE_PROJECT_NAME/)
  })
})

describe('preflight lists every problem at once', () => {
  it('a GitHub problem does not hide the host problems', async () => {
    await seedCiSecrets(bed)
    const stdout = await expectRefusal(
      { environments: 'production,no-such-env', 'compose-file': 'missing.yml' },
      /no-such-env/
    )
    expect(stdout).toMatch(/compose file \S+missing\.yml does not exist/)
  })
})

describe('host text is redacted', () => {
  it("compose's own error quoting the new secret reaches no log, journal or issue", async () => {
    const old = await seedCiSecrets(bed)
    // compose v2 prints the offending value: `Invalid template: "<value>"`.
    await bed.sandbox.setComposeFaults([
      {
        match: '^up -d',
        action: 'fail',
        times: 1,
        command:
          'printf "ERROR: Invalid template: \\"%s\\"\\n" "$(sed -n "s/^JWT_SECRET=//p" .env)"; printf "also %s\\n" "$(sed -n "s/^JWT_REFRESH_SECRET=//p" .env)"'
      }
    ])
    const run = await bed.rotate()
    expectResult(run, 'rolled-back')
    // The fault did print a secret: the new one, now gone from the .env but
    // known to the stand-in, which opened the sealed value.
    const hostLog = readFileSync(path.join(bed.sandbox.deployPath, '.rotation', 'host.log'), 'utf8')
    expect(hostLog).toMatch(/ERROR: Invalid template: "\*\*\*"/)
    expect(hostLog).toMatch(/also \*\*\*/)
    const places = readablePlaces(bed, run)
    const written = bed.github.secretWrites.length > 0
    expect(written).toBe(true)
    expect(leaks([...Object.values(old)], places)).toEqual([])
    // Every new value the run generated was masked for the runner; none reached a readable place.
    const masked = [...run.stdout.matchAll(/^::add-mask::(.+)$/gm)].map((m) => m[1])
    const generated = masked.filter((v) => v.length >= 80 && !Object.values(old).includes(v))
    expect(generated.length).toBeGreaterThanOrEqual(2)
    expect(leaks(generated, places)).toEqual([])
  })
})

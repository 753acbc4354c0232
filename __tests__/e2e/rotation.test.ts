// A full immediate rotation of the sandbox deployment, and a fault at every
// host step: each must roll back to a byte-identical .env, healthy services
// on the old secrets, and CI secrets written back to the old values.
import { describe, expect, it } from '@jest/globals'
import { existsSync, readdirSync } from 'node:fs'
import path from 'node:path'
import jwt from 'jsonwebtoken'
import { envValue } from '../../src/host/dotenv.js'
import type { ComposeFault } from '../../sandbox/index.js'
import {
  KEYS,
  SCOPES,
  ciSecret,
  expectOnlyKeysChanged,
  expectResult,
  fileMode,
  journalOf,
  lastIssue,
  login,
  seedCiSecrets,
  useBed,
  type Bed
} from './helpers.js'

let bed: Bed
useBed((b) => (bed = b))

describe('immediate rotation', () => {
  it('rotates CI secrets and the host, revokes sessions, verifies and reports', async () => {
    const { sandbox, github } = bed
    const old = await seedCiSecrets(bed)
    const envBefore = (await sandbox.readEnvFile()).toString('utf8')
    const beforeLogin = await login(sandbox, sandbox.user)

    // compose-command auto finds docker-compose on the host.
    // restart: all is the runbook's literal sequence (targeted: targeted.test.ts).
    const run = await bed.rotate({ 'compose-command': 'auto', restart: 'all' })
    expectResult(run, 'success')
    expect(run.stdout).toContain('Host: docker-compose (docker-compose version 1.29.2')
    expect(run.code).toBe(0)

    // .env: only the two values changed, mode kept, backups 0600.
    const envAfter = (await sandbox.readEnvFile()).toString('utf8')
    expectOnlyKeysChanged(envBefore, envAfter, KEYS)
    expect(fileMode(path.join(sandbox.deployPath, '.env'))).toBe(0o600)
    const backup = run.outputs['backup-path']
    expect(backup).toMatch(/\/\.env\.backup\.\d{8}T\d{6}Z$/)
    expect((await import('node:fs')).readFileSync(backup, 'utf8')).toBe(envBefore)
    expect(fileMode(backup)).toBe(0o600)
    expect(fileMode(path.join(sandbox.deployPath, '.env.backup'))).toBe(0o600)
    expect(fileMode(path.join(sandbox.deployPath, '.rotation'))).toBe(0o700)
    expect(existsSync(path.join(sandbox.deployPath, '.rotation', 'env.new'))).toBe(false)
    expect(existsSync(path.join(sandbox.deployPath, '.rotation', 'lock'))).toBe(false)

    // Every scope holds exactly the value the host now uses, sealed with that scope's key.
    for (const key of KEYS) {
      const value = envValue(envAfter, key) as string
      expect(value).not.toBe(old[key])
      expect(Buffer.from(value, 'base64')).toHaveLength(64)
      expect(value).toMatch(/^[A-Za-z0-9+/]+=*$/)
      for (const scope of SCOPES) expect(ciSecret(bed, scope, key)).toBe(value)
    }
    expect(JSON.parse(run.outputs['updated-secrets'])).toHaveLength(KEYS.length * SCOPES.length)

    // Old tokens are dead: the access token fails signature checks, the refresh row is gone.
    expect((await sandbox.http('GET', '/api/users/me', { token: beforeLogin.access })).status).toBe(
      401
    )
    expect(
      (await sandbox.http('POST', '/api/auth/refresh', { cookie: beforeLogin.cookie })).status
    ).toBe(401)
    // Only the login checks' rows exist now.
    expect(Number(await sandbox.psql('SELECT count(*) FROM refresh_tokens;'))).toBe(2)
    // New logins work and tokens are signed with the new secret.
    const fresh = await login(sandbox, sandbox.admin)
    expect(() => jwt.verify(fresh.access, envValue(envAfter, 'JWT_SECRET') as string)).not.toThrow()
    expect((await sandbox.http('GET', '/api/health', { token: fresh.access })).status).toBe(200)

    // Outputs, variable, issue.
    expect(run.outputs['rotated-at']).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/)
    expect(Number(run.outputs['downtime-seconds'])).toBeGreaterThan(0)
    expect(github.variables.get('JWT_SECRETS_ROTATED_AT')).toBe(run.outputs['rotated-at'])
    const issue = lastIssue(bed)
    expect(issue.title).toBe(
      `JWT secret rotation ${run.outputs['rotated-at'].slice(0, 10)}: success`
    )
    expect(issue.labels).toEqual(['security', 'secret-rotation'])
    expect(run.outputs['issue-url']).toMatch(/\/issues\/\d+$/)
    for (const line of [
      '- [x] Verify admin can login',
      '- [x] Verify regular user can login',
      '- [x] Check error logs for JWT-related errors',
      '- [x] Update secret in any CI/CD pipelines',
      '- [x] Document rotation date'
    ]) {
      expect(issue.body).toContain(line)
    }
    expect(issue.body).toContain(run.outputs['rotated-at'])
    expect(issue.body).toContain('incident')
    expect(run.summary).toContain('- [x] Document rotation date')

    // The journal lists every step, in order, ending in success.
    const steps = journalOf(sandbox)
      .split('\n')
      .filter((l) => l.split('\t')[1] === 'step-end')
      .map((l) => `${l.split('\t')[2]}:${l.split('\t')[3]}`)
    expect(steps).toEqual(
      ['backup', 'down', 'swap', 'up-postgres', 'wait-postgres', 'revoke', 'up', 'health'].map(
        (s) => `${s}:ok`
      )
    )
    expect(journalOf(sandbox)).toMatch(/\tresult\t-\tsuccess\t/)
  })

  it('keeps backup-retention timestamped backups', async () => {
    const first = await bed.rotate({
      'backup-retention': '1',
      'admin-credentials': '',
      'user-credentials': ''
    })
    expectResult(first, 'success')
    await new Promise((resolve) => setTimeout(resolve, 1100))
    const second = await bed.rotate({
      'backup-retention': '1',
      'admin-credentials': '',
      'user-credentials': ''
    })
    expectResult(second, 'success')
    const backups = readdirSync(bed.sandbox.deployPath).filter((n) =>
      /^\.env\.backup\.\d{8}T\d{6}Z$/.test(n)
    )
    expect(backups).toEqual([path.basename(second.outputs['backup-path'])])
  })
})

describe('a fault at each host step rolls back (restart: all)', () => {
  const cases: Array<[string, ComposeFault[] | null, Record<string, string>]> = [
    ['down', [{ match: '^down', action: 'fail' }], {}],
    // The staged .env disappears after `down`: the swap itself fails.
    ['swap', [{ match: '^down', action: 'run-then-exec', command: 'rm -f .rotation/env.new' }], {}],
    ['up-postgres', [{ match: '^up -d postgres$', action: 'fail' }], {}],
    ['wait-postgres', [{ match: 'pg_isready', action: 'fail' }], { 'health-timeout': '8' }],
    // Passes preflight's rolled-back trial (statement_timeout 15s there), fails for real.
    [
      'revoke',
      null,
      {
        'revoke-sql':
          "DELETE FROM refresh_tokens; SELECT 1 / (current_setting('statement_timeout') = '15s')::int;"
      }
    ],
    ['up', [{ match: '^up -d$', action: 'fail', times: 1 }], {}],
    ['health', null, { 'health-timeout': '8' }]
  ]

  it.each(cases)('%s', async (step, faults, overrides) => {
    const { sandbox } = bed
    const old = await seedCiSecrets(bed)
    const envBefore = await sandbox.readEnvFile()
    const session = await login(sandbox, sandbox.user)
    if (faults) await sandbox.setComposeFaults(faults)
    if (step === 'health') {
      await sandbox.setAppHealthyOnlyWithSecret(
        envValue(envBefore.toString('utf8'), 'JWT_SECRET') as string
      )
    }

    const run = await bed.rotate({ restart: 'all', ...overrides })
    expectResult(run, 'rolled-back')
    expect(run.code).not.toBe(0)

    // .env byte-identical, the app healthy on the old secrets (the old token still works).
    expect((await sandbox.readEnvFile()).equals(envBefore)).toBe(true)
    expect((await sandbox.http('GET', '/api/health/ping')).status).toBe(200)
    expect((await sandbox.http('GET', '/api/users/me', { token: session.access })).status).toBe(200)
    expect(existsSync(path.join(sandbox.deployPath, '.rotation', 'lock'))).toBe(false)
    expect(existsSync(path.join(sandbox.deployPath, '.rotation', 'env.new'))).toBe(false)

    // CI secrets back on the old values.
    for (const scope of SCOPES)
      for (const key of KEYS) expect(ciSecret(bed, scope, key)).toBe(old[key])
    expect(JSON.parse(run.outputs['updated-secrets'])).toEqual([])

    const journal = journalOf(sandbox)
    expect(journal).toMatch(new RegExp(`\\tstep-end\\t${step}\\tfail\\t`))
    expect(journal).toMatch(/\tresult\t-\trolled-back\t/)
    const issue = lastIssue(bed)
    expect(issue.title).toMatch(/: rolled-back$/)
    expect(issue.body).toContain(step)
    expect(issue.body).toMatch(/restored/i)
    expect(issue.body).toContain('- [ ] Update secret in any CI/CD pipelines')
    expect(run.stdout).toMatch(/what failed|failed/i)
    expect(run.stdout).toMatch(/back on the old secrets/)
  })
})

// CI truth against the API stand-in: where the rotated names live (listed
// scopes, every environment, organization secrets), writes whose answer was
// lost, compensation of what a run created, one issue per run, and the token.

import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals'
import { randomBytes } from 'node:crypto'
import { CiSecrets } from '../../src/ci-secrets.js'
import { readConfig, type Config, type SecretScope } from '../../src/config.js'
import { createOctokit, type Octokit } from '../../src/github/client.js'
import { readInventory } from '../../src/github/inventory.js'
import { openIssue } from '../../src/github/issue.js'
import { planPlacement } from '../../src/github/placement.js'
import {
  deleteSecrets,
  GitHubPreflightError,
  preflightSecretScopes,
  writeSecrets
} from '../../src/github/secrets.js'
import { checkToken } from '../../src/github/token.js'
import type { Outcome } from '../../src/outcome.js'
import { startGitHubStandIn, type StandIn } from '../../sandbox/github-api/server.js'
import { inputs } from '../unit/action-inputs.js'

const OWNER = 'acme'
const REPO = 'cloudbox'
const FULL = 'github_pat_full'
const NO_ENVIRONMENTS = 'github_pat_no_environments'
const APP = 'ghs_app_token'
const NAMES = ['JWT_SECRET', 'JWT_REFRESH_SECRET']

const repository: SecretScope = { kind: 'repository' }
const production: SecretScope = { kind: 'environment', name: 'production' }

let standIn: StandIn
let octokit: Octokit

function client(token: string): Octokit {
  return createOctokit(token, { retryBackoffMs: 5, writeSpacingMs: 0, notificationSpacingMs: 0 })
}

const value = (): string => randomBytes(48).toString('base64')

function seed(scope: string, names = NAMES): Record<string, string> {
  const values: Record<string, string> = {}
  for (const name of names) {
    values[name] = value()
    standIn.secrets(scope).set(name, values[name])
  }
  return values
}

async function problemsOf(promise: Promise<unknown>): Promise<string[]> {
  try {
    await promise
  } catch (error) {
    expect(error).toBeInstanceOf(GitHubPreflightError)
    return (error as GitHubPreflightError).problems
  }
  throw new Error('expected a GitHubPreflightError')
}

beforeAll(async () => {
  standIn = await startGitHubStandIn({
    owner: OWNER,
    repo: REPO,
    environments: ['production', 'staging'],
    validateResponses: true,
    tokens: {
      [FULL]: ['secrets', 'environments', 'variables', 'issues'],
      [NO_ENVIRONMENTS]: ['secrets', 'variables', 'issues'],
      [APP]: ['secrets', 'environments', 'variables', 'issues']
    },
    tokenExpiry: { [APP]: '2026-12-05 09:12:00 UTC' }
  })
  process.env.GITHUB_API_URL = standIn.url
  octokit = client(FULL)
})

beforeEach(() => standIn.reset())

afterAll(async () => {
  await standIn.stop()
  delete process.env.GITHUB_API_URL
})

describe('where the rotated names live', () => {
  it('a secret kept only in production is never copied to the repository', async () => {
    seed('environment:production')
    const inventory = await readInventory(octokit, OWNER, REPO, [repository, production], NAMES, [])
    const placement = planPlacement({
      scopes: [repository, production],
      names: NAMES,
      inventory,
      createMissing: false,
      repository: `${OWNER}/${REPO}`
    })
    expect(placement.problems).toEqual([])
    expect(placement.writes.map((w) => `${w.scope.kind}/${w.name}/${w.create}`)).toEqual([
      'environment/JWT_SECRET/false',
      'environment/JWT_REFRESH_SECRET/false'
    ])
    expect(placement.notices).toEqual([
      expect.stringContaining('repository holds no JWT_SECRET, JWT_REFRESH_SECRET: skipped there')
    ])
  })

  it('refuses a key no listed scope holds, pointing at create-missing; creates with it', async () => {
    seed('repository', ['JWT_SECRET'])
    const inventory = await readInventory(octokit, OWNER, REPO, [repository], NAMES, [])
    const refused = planPlacement({
      scopes: [repository],
      names: NAMES,
      inventory,
      createMissing: false,
      repository: `${OWNER}/${REPO}`
    })
    expect(refused.problems).toEqual([
      expect.stringMatching(
        /^JWT_REFRESH_SECRET is held by none of the listed scopes \(repository\).*create-missing: true/
      )
    ])
    const created = planPlacement({
      scopes: [repository],
      names: NAMES,
      inventory,
      createMissing: true,
      repository: `${OWNER}/${REPO}`
    })
    expect(created.problems).toEqual([])
    expect(created.writes.map((w) => `${w.name}/${w.create}`)).toEqual([
      'JWT_SECRET/false',
      'JWT_REFRESH_SECRET/true'
    ])
  })

  it('finds a stale copy in an unlisted environment on the second page, unless ignored', async () => {
    // 120 environments: per_page is at most 100, so the last ones are on page 2.
    for (let i = 0; i < 118; i++) standIn.addEnvironment(`review-${String(i).padStart(3, '0')}`)
    seed('repository')
    seed('environment:review-117', ['JWT_REFRESH_SECRET'])
    seed('environment:staging', ['JWT_SECRET'])
    const requestsBefore = standIn.requests.length
    const inventory = await readInventory(octokit, OWNER, REPO, [repository], NAMES, ['staging'])
    expect(inventory.unlisted).toEqual([
      { environment: 'review-117', names: ['JWT_REFRESH_SECRET'] }
    ])
    expect(inventory.ignored).toEqual([{ environment: 'staging', names: ['JWT_SECRET'] }])
    const placement = planPlacement({
      scopes: [repository],
      names: NAMES,
      inventory,
      createMissing: false,
      repository: `${OWNER}/${REPO}`
    })
    expect(placement.problems).toEqual([
      expect.stringMatching(
        /^environment review-117 holds JWT_REFRESH_SECRET but is not listed in environments.*ignore-environments/
      )
    ])
    expect(
      standIn.requests
        .slice(requestsBefore)
        .filter((r) => r.path === `/repos/${OWNER}/${REPO}/environments`)
    ).toHaveLength(2)
  })

  it('refuses an organization secret that jobs would read instead of the repository', async () => {
    standIn.orgSecrets.set('JWT_SECRET', 'all')
    seed('environment:production')
    const inventory = await readInventory(octokit, OWNER, REPO, [production], NAMES, [])
    expect(inventory.organization).toEqual(['JWT_SECRET'])
    const placement = planPlacement({
      scopes: [production],
      names: NAMES,
      inventory,
      createMissing: false,
      repository: `${OWNER}/${REPO}`
    })
    expect(placement.problems).toEqual([
      expect.stringMatching(/^organization secret JWT_SECRET is visible to acme\/cloudbox/)
    ])
    // The repository's own copy, rotated by this run, shadows the organization's.
    seed('repository')
    const shadowed = await readInventory(octokit, OWNER, REPO, [repository, production], NAMES, [])
    expect(
      planPlacement({
        scopes: [repository, production],
        names: NAMES,
        inventory: shadowed,
        createMissing: false,
        repository: `${OWNER}/${REPO}`
      }).problems
    ).toEqual([])
  })

  it('never assumes a place it cannot list is empty', async () => {
    const problems = await problemsOf(
      readInventory(client(NO_ENVIRONMENTS), OWNER, REPO, [repository], NAMES, [])
    )
    expect(problems).toEqual([
      expect.stringMatching(
        /^listing the environments of acme\/cloudbox: access refused \(403\).*"Environments".*which the check for stale copies needs/
      )
    ])
  })
})

describe('writes whose answer was lost', () => {
  it('a 500 after GitHub applied the write is ambiguous; a 422 is not', async () => {
    const keys = await preflightSecretScopes(octokit, OWNER, REPO, [repository])
    standIn.inject({
      method: 'PUT',
      path: /\/actions\/secrets\/JWT_SECRET$/,
      status: 502,
      afterApplying: true
    })
    const newValue = value()
    const result = await writeSecrets(octokit, OWNER, REPO, keys, [
      { scope: repository, name: 'JWT_SECRET', value: newValue }
    ])
    expect(result.failed).toEqual([
      expect.objectContaining({ name: 'JWT_SECRET', ambiguous: true })
    ])
    // It was applied although every answer said otherwise.
    expect(standIn.secrets('repository').get('JWT_SECRET')).toBe(newValue)

    standIn.clearFaults()
    standIn.inject({ method: 'PUT', path: /\/actions\/secrets\/JWT_SECRET$/, status: 422 })
    const refused = await writeSecrets(octokit, OWNER, REPO, keys, [
      { scope: repository, name: 'JWT_SECRET', value: value() }
    ])
    expect(refused.failed).toEqual([expect.objectContaining({ ambiguous: false })])
  })

  it('deleting a secret that is already gone counts as deleted', async () => {
    seed('repository', ['JWT_SECRET'])
    const result = await deleteSecrets(octokit, OWNER, REPO, [
      { scope: repository, name: 'JWT_SECRET' },
      { scope: repository, name: 'JWT_REFRESH_SECRET' }
    ])
    expect(result.deleted).toHaveLength(2)
    expect(standIn.secrets('repository').size).toBe(0)
  })
})

function outcome(): Outcome {
  return {
    result: 'failed',
    rotatedAt: '2026-12-05T07:00:00.000Z',
    mode: 'immediate',
    recover: false,
    dryRun: false,
    reason: 'incident',
    repository: `${OWNER}/${REPO}`,
    triggeredBy: 'octocat',
    host: 'deploy@prod:22',
    changed: [],
    stateNow: 'nothing was changed',
    hostSteps: [],
    updatedSecrets: [],
    restoredSecrets: [],
    unrestoredSecrets: [],
    logins: []
  }
}

function config(overrides: Record<string, string>): Config {
  return readConfig(inputs({ repository: `${OWNER}/${REPO}`, 'secrets-token': FULL, ...overrides }))
}

describe('compensation undoes every attempted write', () => {
  it('deletes what it created, restores what it updated, including a write whose answer was lost', async () => {
    const old = seed('environment:production')
    const o = outcome()
    const ci = new CiSecrets(
      config({ environments: 'production', 'create-missing': 'true' }),
      o,
      octokit
    )
    await ci.preflight(600, new Date())
    // The repository gets created secrets; one PUT's answer is lost after applying.
    standIn.inject({
      method: 'PUT',
      path: /\/environments\/production\/secrets\/JWT_SECRET$/,
      status: 503,
      afterApplying: true
    })
    const ok = await ci.writeNew({ JWT_SECRET: value(), JWT_REFRESH_SECRET: value() })
    expect(ok).toBe(false)
    expect(o.unknownSecrets).toEqual([
      expect.objectContaining({ scope: 'environment:production', name: 'JWT_SECRET' })
    ])
    expect(o.createdSecrets?.map((s) => `${s.scope}/${s.name}`).sort()).toEqual([
      'repository/JWT_REFRESH_SECRET',
      'repository/JWT_SECRET'
    ])
    standIn.clearFaults()
    await ci.compensate(
      'old',
      { JWT_SECRET: old.JWT_SECRET, JWT_REFRESH_SECRET: old.JWT_REFRESH_SECRET },
      '/opt/cloudbox/.env.backup'
    )
    expect(standIn.secrets('repository').size).toBe(0)
    expect(standIn.secrets('environment:production').get('JWT_SECRET')).toBe(old.JWT_SECRET)
    expect(standIn.secrets('environment:production').get('JWT_REFRESH_SECRET')).toBe(
      old.JWT_REFRESH_SECRET
    )
    expect(o.unknownSecrets).toEqual([])
    expect(o.removedSecrets).toHaveLength(2)
    expect(o.updatedSecrets).toEqual([])
    expect(o.mismatch).toBeUndefined()
  })

  it('with the host state unknown it writes nothing and keeps the lost write unknown', async () => {
    seed('repository')
    const o = outcome()
    const ci = new CiSecrets(config({}), o, octokit)
    await ci.preflight(600, new Date())
    standIn.inject({
      method: 'PUT',
      path: /\/actions\/secrets\/JWT_SECRET$/,
      status: 500,
      afterApplying: true
    })
    await ci.writeNew({ JWT_SECRET: value(), JWT_REFRESH_SECRET: value() })
    const writes = standIn.secretWrites.length
    await ci.compensate('unknown', { JWT_SECRET: 'x'.repeat(20) }, '/b')
    expect(standIn.secretWrites.length).toBe(writes)
    expect(o.unknownSecrets?.map((s) => s.name)).toEqual(['JWT_SECRET'])
    expect(o.mismatch).toMatch(/unknown/)
  })

  it('re-checks the token first: an expired token leaves the secrets named, not half-written', async () => {
    const old = seed('repository')
    const o = outcome()
    const ci = new CiSecrets(config({ 'secrets-token': APP }), o, client(APP))
    await ci.preflight(600, new Date('2026-12-05T09:00:00Z'))
    await ci.writeNew({ JWT_SECRET: value(), JWT_REFRESH_SECRET: value() })
    standIn.revokeToken(APP)
    await ci.compensate('old', old, '/opt/cloudbox/.env.backup')
    expect(o.unrestoredSecrets.map((s) => s.name).sort()).toEqual(NAMES.slice().sort())
    expect(o.unrestoredSecrets[0].error).toMatch(/expired or was revoked/)
    expect(o.mismatch).toMatch(/^CI and production DISAGREE/)
  })
})

describe('the token', () => {
  it('reads the expiry GitHub reports', async () => {
    const check = await checkToken(client(APP), OWNER, REPO)
    expect(check).toEqual({ ok: true, expiresAt: new Date('2026-12-05T09:12:00Z') })
    standIn.revokeToken(APP)
    expect(await checkToken(client(APP), OWNER, REPO)).toEqual({
      ok: false,
      reason: expect.stringContaining('(401)')
    })
  })
})

describe('one issue per run', () => {
  it('a lost answer to POST /issues is followed by a look-up, not a second issue', async () => {
    const before = standIn.issues.length
    standIn.inject({
      method: 'POST',
      path: /\/issues$/,
      status: 502,
      afterApplying: true,
      times: 1
    })
    const issue = await openIssue(
      octokit,
      OWNER,
      REPO,
      {
        title: 'JWT secret rotation 2026-12-05: success',
        body: 'report',
        marker: 'run 42 attempt 1'
      },
      { backoffMs: 5 }
    )
    expect(standIn.issues.length).toBe(before + 1)
    expect(issue.number).toBe(standIn.issues.at(-1)?.number)
    expect(standIn.issues.at(-1)?.body).toContain('<!-- rotate-jwt-secrets: run 42 attempt 1 -->')
  })

  it('posts again when the lost attempt created nothing', async () => {
    const before = standIn.issues.length
    standIn.inject({ method: 'POST', path: /\/issues$/, status: 500, times: 1 })
    await openIssue(
      octokit,
      OWNER,
      REPO,
      { title: 't', body: 'b', marker: 'run 43 attempt 1' },
      { backoffMs: 5 }
    )
    expect(standIn.issues.length).toBe(before + 1)
  })
})

// The GitHub half against the API stand-in: a real HTTP server with real
// libsodium key pairs per scope, checking requests against GitHub's OpenAPI.

import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals'
import { randomBytes } from 'node:crypto'
import type { SecretScope } from '../../src/config.js'
import { createOctokit, type Octokit } from '../../src/github/client.js'
import { openIssue } from '../../src/github/issue.js'
import { sealSecret } from '../../src/github/seal.js'
import {
  GitHubPreflightError,
  preflightSecretScopes,
  preflightVariables,
  writeSecrets,
  type SecretWrite
} from '../../src/github/secrets.js'
import { setRepositoryVariable } from '../../src/github/variables.js'
import { startGitHubStandIn, type StandIn } from '../../sandbox/github-api/server.js'

const OWNER = 'acme'
const REPO = 'cloudbox'
const FULL = 'github_pat_full_access'
const NO_ENVIRONMENTS = 'github_pat_no_environments'
const NO_SECRETS = 'github_pat_no_secrets'
const ISSUES_ONLY = 'ghs_issues_only'

const repository: SecretScope = { kind: 'repository' }
const production: SecretScope = { kind: 'environment', name: 'production' }
const staging: SecretScope = { kind: 'environment', name: 'staging eu' } // needs URL encoding
const ALL = [repository, production, staging]

let standIn: StandIn
let octokit: Octokit
/** Everything written to stdout (where @actions/core logs) during the suite. */
let logged = ''
const secretValues: string[] = []

const newSecret = (): string => {
  const value = randomBytes(64).toString('base64')
  secretValues.push(value)
  return value
}

function client(token: string): Octokit {
  return createOctokit(token, { retryBackoffMs: 10, writeSpacingMs: 0, notificationSpacingMs: 0 })
}

async function preflightError(promise: Promise<unknown>): Promise<GitHubPreflightError> {
  try {
    await promise
  } catch (error) {
    expect(error).toBeInstanceOf(GitHubPreflightError)
    return error as GitHubPreflightError
  }
  throw new Error('expected a GitHubPreflightError')
}

beforeAll(async () => {
  standIn = await startGitHubStandIn({
    owner: OWNER,
    repo: REPO,
    environments: ['production', 'staging eu'],
    assignableUsers: ['acme', 'oncall-bot'],
    validateResponses: true,
    tokens: {
      [FULL]: ['secrets', 'environments', 'variables', 'issues'],
      [NO_ENVIRONMENTS]: ['secrets', 'variables', 'issues'],
      [NO_SECRETS]: ['environments'],
      [ISSUES_ONLY]: ['issues']
    }
  })
  // createOctokit must pick GITHUB_API_URL up when called, not when @actions/github was imported.
  process.env.GITHUB_API_URL = standIn.url
  octokit = client(FULL)
  const write = process.stdout.write.bind(process.stdout)
  jest.spyOn(process.stdout, 'write').mockImplementation((chunk, ...rest) => {
    logged += String(chunk)
    return (write as (...a: unknown[]) => boolean)(chunk, ...rest)
  })
})

afterEach(() => standIn.clearFaults())

afterAll(async () => {
  jest.restoreAllMocks()
  await standIn.stop()
  delete process.env.GITHUB_API_URL
})

describe('preflightSecretScopes', () => {
  it('returns each scope its own public key', async () => {
    const keys = await preflightSecretScopes(octokit, OWNER, REPO, ALL)
    expect(keys.map((k) => k.scope)).toEqual(ALL)
    expect(keys.map((k) => k.keyId)).toEqual([
      standIn.keyId('repository'),
      standIn.keyId('environment:production'),
      standIn.keyId('environment:staging eu')
    ])
    expect(new Set(keys.map((k) => k.keyId)).size).toBe(3)
    expect(new Set(keys.map((k) => k.key)).size).toBe(3)
    expect(standIn.requests).toContainEqual({
      method: 'GET',
      path: `/repos/${OWNER}/${REPO}/environments/staging%20eu/secrets/public-key`,
      status: 200
    })
  })

  it('names the "Secrets" permission on 403 and says GITHUB_TOKEN cannot do it', async () => {
    const error = await preflightError(
      preflightSecretScopes(client(NO_SECRETS), OWNER, REPO, [repository])
    )
    expect(error.problems).toHaveLength(1)
    expect(error.message).toMatch(/lacks the "Secrets" repository permission/)
    expect(error.message).toMatch(/GITHUB_TOKEN cannot write Actions secrets/)
    expect(error.message).toMatch(/secrets=read/) // x-accepted-github-permissions
    expect(error.message).toMatch(/nothing was written/)
  })

  it('names the "Environments" permission on 403 for environment scopes', async () => {
    const error = await preflightError(
      preflightSecretScopes(client(NO_ENVIRONMENTS), OWNER, REPO, ALL)
    )
    expect(error.problems).toHaveLength(2)
    expect(error.problems[0]).toMatch(
      /environment production: .*"Environments" repository permission/
    )
    expect(error.problems[1]).toMatch(/environment staging eu: /)
  })

  it('names a missing environment and lists every problem, not just the first', async () => {
    const error = await preflightError(
      preflightSecretScopes(client(NO_SECRETS), OWNER, REPO, [
        repository,
        production,
        { kind: 'environment', name: 'ghost' }
      ])
    )
    expect(error.problems).toEqual([
      expect.stringMatching(/"Secrets" repository permission/),
      `environment ghost does not exist in ${OWNER}/${REPO} (create it under Settings → Environments, or fix the environments input)`
    ])
  })

  it('tells a missing repository apart from a missing environment', async () => {
    const error = await preflightError(
      preflightSecretScopes(octokit, OWNER, 'nope', [repository, production])
    )
    expect(error.problems).toEqual([
      `repository ${OWNER}/nope does not exist or the token cannot see it (404): check the repository input and that the token has access to this repository`
    ])
  })

  it('reports a bad token once', async () => {
    const error = await preflightError(preflightSecretScopes(client('wrong'), OWNER, REPO, ALL))
    expect(error.problems).toEqual([expect.stringMatching(/401 Bad credentials/)])
  })
})

describe('writeSecrets', () => {
  const plan = (): SecretWrite[] =>
    ALL.flatMap((scope) => [
      { scope, name: 'JWT_SECRET', value: newSecret() },
      { scope, name: 'JWT_REFRESH_SECRET', value: newSecret() }
    ])

  it('stores in each scope exactly the plaintext written, sealed with that scope key', async () => {
    const keys = await preflightSecretScopes(octokit, OWNER, REPO, ALL)
    const writes = plan()
    const seen: string[] = []
    const result = await writeSecrets(octokit, OWNER, REPO, keys, writes, {
      onWritten: (w) => seen.push(`${w.scope.kind}/${w.name}`)
    })
    expect(result.failed).toEqual([])
    expect(result.written).toEqual(writes.map(({ scope, name }) => ({ scope, name })))
    expect(seen).toHaveLength(6)
    for (const [label, scope] of [
      ['repository', repository],
      ['environment:production', production],
      ['environment:staging eu', staging]
    ] as const) {
      const expected = new Map(
        writes.filter((w) => w.scope === scope).map((w) => [w.name, w.value])
      )
      expect(standIn.secrets(label)).toEqual(expected)
    }
  })

  it('the stand-in rejects an environment secret sealed with the repository key', async () => {
    const repoKey = standIn.publicKey('repository')
    const put = (body: object): Promise<Response> =>
      fetch(`${standIn.url}/repos/${OWNER}/${REPO}/environments/production/secrets/WRONG_KEY`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${FULL}`, 'content-type': 'application/json' },
        body: JSON.stringify(body)
      })
    const sealed = await sealSecret(newSecret(), repoKey)
    // the repository's key_id is not the environment's
    const byKeyId = await put({ encrypted_value: sealed, key_id: standIn.keyId('repository') })
    expect(byKeyId.status).toBe(422)
    expect(((await byKeyId.json()) as { message: string }).message).toMatch(/key_id does not match/)
    // the environment's key_id on a value sealed for the repository cannot be opened
    const byValue = await put({
      encrypted_value: sealed,
      key_id: standIn.keyId('environment:production')
    })
    expect(byValue.status).toBe(422)
    expect(((await byValue.json()) as { message: string }).message).toMatch(
      /could not be decrypted/
    )
    expect(standIn.secrets('environment:production').has('WRONG_KEY')).toBe(false)
  })

  it('retries a PUT that fails with 500 twice, then succeeds', async () => {
    const keys = await preflightSecretScopes(octokit, OWNER, REPO, [production])
    standIn.injectServerError({ method: 'PUT', path: /\/production\/secrets\/FLAKY$/, times: 2 })
    const value = newSecret()
    const result = await writeSecrets(octokit, OWNER, REPO, keys, [
      { scope: production, name: 'FLAKY', value }
    ])
    expect(result).toEqual({ written: [{ scope: production, name: 'FLAKY' }], failed: [] })
    const attempts = standIn.requests.filter((r) => r.path.endsWith('/production/secrets/FLAKY'))
    expect(attempts.map((r) => r.status)).toEqual([500, 500, 201])
    expect(standIn.secrets('environment:production').get('FLAKY')).toBe(value)
  })

  it('honours retry-after on a secondary rate limit', async () => {
    const keys = await preflightSecretScopes(octokit, OWNER, REPO, [repository])
    standIn.injectSecondaryRateLimit({ method: 'PUT', path: /\/secrets\/LIMITED$/, retryAfter: 1 })
    const started = Date.now()
    const result = await writeSecrets(octokit, OWNER, REPO, keys, [
      { scope: repository, name: 'LIMITED', value: newSecret() }
    ])
    expect(Date.now() - started).toBeGreaterThanOrEqual(950)
    expect(result.failed).toEqual([])
    const attempts = standIn.requests.filter((r) => r.path.endsWith('/secrets/LIMITED'))
    expect(attempts.map((r) => r.status)).toEqual([403, 201])
    expect(logged).toMatch(/secondary rate limit .*retrying after 1s/)
  })

  it('retries a rate limit at most twice, then reports it as a rate limit, not a permission', async () => {
    const fast = createOctokit(FULL, { retryBackoffMs: 10, rateLimitSecondMs: 10 })
    standIn.inject({
      method: 'GET',
      path: /\/actions\/secrets\/public-key$/,
      status: 403,
      headers: {
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': String(Math.floor(Date.now() / 1000))
      },
      body: {
        message: 'API rate limit exceeded for user ID 1.',
        documentation_url: 'https://docs.github.com/rest'
      }
    })
    const before = standIn.requests.length
    const error = await preflightError(preflightSecretScopes(fast, OWNER, REPO, [repository]))
    expect(standIn.requests.slice(before).map((r) => r.status)).toEqual([403, 403, 403])
    expect(error.problems).toEqual([
      expect.stringMatching(/^repository: .*rate limit.*retries ran out/)
    ])
    expect(error.message).not.toMatch(/permission/)
    expect(logged).toMatch(/rate limit reached .*giving up after 2 retries/)

    standIn.clearFaults()
    const keys = await preflightSecretScopes(fast, OWNER, REPO, [repository])
    standIn.injectSecondaryRateLimit({ method: 'PUT', path: /\/secrets\/HAMMERED$/, times: 3 })
    const result = await writeSecrets(fast, OWNER, REPO, keys, [
      { scope: repository, name: 'HAMMERED', value: newSecret() }
    ])
    expect(result.written).toEqual([])
    expect(result.failed).toEqual([
      {
        scope: repository,
        name: 'HAMMERED',
        error: expect.stringMatching(
          /^HTTP 403: You have exceeded a secondary rate limit.*retries ran out/
        ),
        // GitHub refused it: certainly not applied.
        ambiguous: false
      }
    ])
  })

  it('collects a permanently failing write and still writes the rest', async () => {
    const keys = await preflightSecretScopes(octokit, OWNER, REPO, ALL)
    standIn.inject({ method: 'PUT', path: /\/staging%20eu\/secrets\/JWT_SECRET$/, status: 503 })
    const writes = plan()
    const result = await writeSecrets(octokit, OWNER, REPO, keys, writes, { concurrency: 2 })
    expect(result.failed).toEqual([
      {
        scope: staging,
        name: 'JWT_SECRET',
        error: expect.stringMatching(/^HTTP 503: /),
        // A server error may hide an applied write.
        ambiguous: true
      }
    ])
    expect(result.written).toHaveLength(5)
    expect(result.written).not.toContainEqual({ scope: staging, name: 'JWT_SECRET' })
    // 1 try + 3 retries
    expect(
      standIn.requests.filter((r) => r.path.endsWith('/staging%20eu/secrets/JWT_SECRET')).slice(-4)
    ).toEqual(Array(4).fill(expect.objectContaining({ status: 503 })))
    for (const value of writes.map((w) => w.value)) {
      expect(JSON.stringify(result)).not.toContain(value)
    }
  })

  it('fails a write whose scope was not preflighted without sending it', async () => {
    const keys = await preflightSecretScopes(octokit, OWNER, REPO, [repository])
    const before = standIn.requests.length
    const result = await writeSecrets(octokit, OWNER, REPO, keys, [
      { scope: production, name: 'ORPHAN', value: newSecret() }
    ])
    expect(result.failed).toEqual([
      {
        scope: production,
        name: 'ORPHAN',
        error: expect.stringMatching(/no public key/),
        ambiguous: false
      }
    ])
    expect(standIn.requests.length).toBe(before)
  })
})

describe('variables', () => {
  it('creates the variable, then updates it', async () => {
    expect(await preflightVariables(octokit, OWNER, REPO, 'JWT_SECRETS_ROTATED_AT')).toEqual({
      exists: false
    })
    expect(
      await setRepositoryVariable(
        octokit,
        OWNER,
        REPO,
        'JWT_SECRETS_ROTATED_AT',
        '2025-01-01T00:00:00Z'
      )
    ).toBe('created')
    expect(standIn.variables.get('JWT_SECRETS_ROTATED_AT')).toBe('2025-01-01T00:00:00Z')
    expect(
      await setRepositoryVariable(
        octokit,
        OWNER,
        REPO,
        'JWT_SECRETS_ROTATED_AT',
        '2025-02-01T00:00:00Z'
      )
    ).toBe('updated')
    expect(standIn.variables.get('JWT_SECRETS_ROTATED_AT')).toBe('2025-02-01T00:00:00Z')
    expect(await preflightVariables(octokit, OWNER, REPO, 'JWT_SECRETS_ROTATED_AT')).toEqual({
      exists: true
    })
  })

  it('names the "Variables" permission when the token lacks it', async () => {
    const error = await preflightError(
      preflightVariables(client(ISSUES_ONLY), OWNER, REPO, 'JWT_SECRETS_ROTATED_AT')
    )
    expect(error.message).toMatch(/lacks the "Variables" repository permission/)
    await expect(setRepositoryVariable(client(ISSUES_ONLY), OWNER, REPO, 'X', 'y')).rejects.toThrow(
      /HTTP 403.*"Variables".*was not changed/
    )
  })
})

describe('openIssue', () => {
  it('opens the issue with labels (created on the fly) and assignees', async () => {
    const issue = await openIssue(client(ISSUES_ONLY), OWNER, REPO, {
      title: 'JWT secret rotation 2025-01-01: success',
      body: '- [x] Verify admin can login',
      labels: ['security', 'secret-rotation'],
      assignees: ['oncall-bot']
    })
    const stored = standIn.issues.find((i) => i.number === issue.number)
    expect(issue.url).toBe(`${standIn.url}/${OWNER}/${REPO}/issues/${issue.number}`)
    expect(issue.warnings).toEqual([])
    expect(stored).toMatchObject({
      labels: ['security', 'secret-rotation'],
      assignees: ['oncall-bot']
    })
    expect(standIn.labels.has('secret-rotation')).toBe(true)
  })

  it('drops an invalid assignee with a warning so the report still lands', async () => {
    const issue = await openIssue(client(ISSUES_ONLY), OWNER, REPO, {
      title: 'JWT secret rotation 2025-01-02: failed',
      body: 'body',
      labels: ['security'],
      assignees: ['not-a-collaborator']
    })
    expect(issue.warnings).toEqual([expect.stringMatching(/without assignees/)])
    expect(standIn.issues.find((i) => i.number === issue.number)).toMatchObject({
      assignees: [],
      labels: ['security']
    })
    expect(logged).toMatch(/::warning::opening the issue with assignees not-a-collaborator failed/)
  })

  it('says no issue was opened when the token may not open one', async () => {
    await expect(
      openIssue(client(NO_SECRETS), OWNER, REPO, { title: 't', body: 'b' })
    ).rejects.toThrow(/HTTP 403.*"Issues".*no issue was opened/)
  })
})

describe('the stand-in follows GitHub OpenAPI description', () => {
  const call = (method: string, path: string, body?: unknown): Promise<Response> =>
    fetch(`${standIn.url}${path}`, {
      method,
      headers: { authorization: `token ${FULL}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body)
    })

  it('answers an unknown path, and a known path with a wrong method, with 404', async () => {
    for (const [method, path] of [
      ['GET', `/repos/${OWNER}/${REPO}/actions/secretz`],
      ['POST', `/repos/${OWNER}/${REPO}/actions/secrets/public-key`]
    ]) {
      const response = await call(method, path)
      expect(response.status).toBe(404)
      expect(await response.json()).toMatchObject({
        message: 'Not Found',
        documentation_url: expect.stringMatching(/^https:\/\/docs\.github\.com/)
      })
    }
  })

  it('rejects a malformed body with 422 Invalid request', async () => {
    const response = await call('PUT', `/repos/${OWNER}/${REPO}/actions/secrets/BAD`, {
      encrypted_value: 'not base64!!',
      key_id: 12
    })
    expect(response.status).toBe(422)
    const { message } = (await response.json()) as { message: string }
    expect(message).toMatch(/^Invalid request\.\n\n/)
    expect(message).toMatch(/"key_id" must be string/)
    expect(message).toMatch(/"encrypted_value" must match pattern/)
  })

  it('rejects a missing token with 401 Bad credentials', async () => {
    const response = await fetch(`${standIn.url}/repos/${OWNER}/${REPO}`)
    expect(response.status).toBe(401)
    expect(await response.json()).toMatchObject({ message: 'Bad credentials' })
  })

  it('sent only responses that match the documented schemas', async () => {
    // Operations not exercised above.
    expect((await call('GET', `/repos/${OWNER}/${REPO}`)).status).toBe(200)
    expect((await call('GET', `/repos/${OWNER}/${REPO}/environments/production`)).status).toBe(200)
    expect((await call('GET', `/repos/${OWNER}/${REPO}/actions/secrets/JWT_SECRET`)).status).toBe(
      200
    )
    expect(
      (await call('GET', `/repos/${OWNER}/${REPO}/environments/production/secrets/JWT_SECRET`))
        .status
    ).toBe(200)
    expect((await call('DELETE', `/repos/${OWNER}/${REPO}/actions/secrets/LIMITED`)).status).toBe(
      204
    )
    expect(
      (await call('DELETE', `/repos/${OWNER}/${REPO}/environments/production/secrets/FLAKY`)).status
    ).toBe(204)
    expect(
      (
        await call('POST', `/repos/${OWNER}/${REPO}/actions/variables`, {
          name: 'JWT_SECRETS_ROTATED_AT',
          value: 'x'
        })
      ).status
    ).toBe(409)
    const exercised = new Set(standIn.requests.map((r) => `${r.method} ${r.status}`))
    expect(exercised).toEqual(expect.any(Set))
    expect(standIn.responseProblems).toEqual([])
  })
})

describe('secrecy', () => {
  it('logged no secret value', () => {
    expect(secretValues.length).toBeGreaterThan(10)
    for (const value of secretValues) expect(logged).not.toContain(value)
  })
})

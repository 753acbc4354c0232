// The report's own preflight: the issue token must see the repository.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { createOctokit } from '../../src/github/client.js'
import { preflightIssues } from '../../src/github/issue.js'
import { GitHubPreflightError } from '../../src/github/secrets.js'
import { startGitHubStandIn, type StandIn } from '../../sandbox/github-api/server.js'

let standIn: StandIn
const client = (token: string) =>
  createOctokit(token, { baseUrl: standIn.url, retryBackoffMs: 10, writeSpacingMs: 0 })

beforeAll(async () => {
  standIn = await startGitHubStandIn({
    owner: 'acme',
    repo: 'cloudbox',
    environments: [],
    tokens: { ghs_issues: ['issues'] },
    validateResponses: true
  })
})
afterAll(async () => {
  await standIn.stop()
})

describe('preflightIssues', () => {
  it('passes for a token that sees the repository', async () => {
    await expect(preflightIssues(client('ghs_issues'), 'acme', 'cloudbox')).resolves.toBeUndefined()
    expect(standIn.responseProblems).toEqual([])
  })

  it('refuses a rejected token, naming the input', async () => {
    const error = await preflightIssues(client('ghs_unknown'), 'acme', 'cloudbox').catch((e) => e)
    expect(error).toBeInstanceOf(GitHubPreflightError)
    expect((error as GitHubPreflightError).problems[0]).toMatch(/github-token was rejected \(401/)
  })

  it('refuses a repository the token cannot see', async () => {
    const error = await preflightIssues(client('ghs_issues'), 'acme', 'other').catch((e) => e)
    expect(error).toBeInstanceOf(GitHubPreflightError)
    expect((error as GitHubPreflightError).problems[0]).toMatch(/cannot see acme\/other \(404\)/)
  })
})

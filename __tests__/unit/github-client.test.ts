import { afterEach, describe, expect, it } from '@jest/globals'
import { createOctokit, describeError, isRateLimited } from '../../src/github/client.js'
import { describeSecrets, GitHubPreflightError } from '../../src/github/secrets.js'

const requestError = (status: number, message: string, headers: Record<string, string> = {}) =>
  Object.assign(new Error(`${message} - https://docs.github.com/rest`), {
    status,
    response: {
      status,
      headers,
      data: { message, documentation_url: 'https://docs.github.com/rest' }
    }
  })

describe('createOctokit', () => {
  const saved = process.env.GITHUB_API_URL
  afterEach(() => {
    if (saved === undefined) delete process.env.GITHUB_API_URL
    else process.env.GITHUB_API_URL = saved
  })

  it('reads GITHUB_API_URL when called (GHES), not when @actions/github was imported', () => {
    process.env.GITHUB_API_URL = 'https://ghes.example.com/api/v3/'
    const octokit = createOctokit('t')
    expect(octokit.request.endpoint.DEFAULTS.baseUrl).toBe('https://ghes.example.com/api/v3')
  })

  it('defaults to api.github.com', () => {
    delete process.env.GITHUB_API_URL
    expect(createOctokit('t').request.endpoint.DEFAULTS.baseUrl).toBe('https://api.github.com')
  })
})

describe('errors', () => {
  it('describes a request error by status and GitHub message', () => {
    expect(describeError(requestError(404, 'Not Found'))).toBe('HTTP 404: Not Found')
    expect(describeError(new Error('socket hang up'))).toBe('socket hang up')
  })

  it('tells rate limits from missing permissions', () => {
    expect(
      isRateLimited(requestError(403, 'Resource not accessible by personal access token'))
    ).toBe(false)
    expect(isRateLimited(requestError(403, 'x', { 'x-ratelimit-remaining': '0' }))).toBe(true)
    expect(isRateLimited(requestError(403, 'You have exceeded a secondary rate limit.'))).toBe(true)
    expect(isRateLimited(requestError(429, 'Too many requests'))).toBe(true)
  })

  it('lists every preflight problem and says nothing was written', () => {
    const error = new GitHubPreflightError(['one', 'two'])
    expect(error.message).toBe(
      'GitHub preflight failed, nothing was written to GitHub (2 problems):\n- one\n- two'
    )
    expect(error.name).toBe('GitHubPreflightError')
  })

  it('describes secrets by scope and name only', () => {
    expect(
      describeSecrets([
        { scope: { kind: 'repository' }, name: 'A' },
        { scope: { kind: 'environment', name: 'prod' }, name: 'A' },
        { scope: { kind: 'repository' }, name: 'B' }
      ])
    ).toBe('repository: A, B; environment:prod: A')
  })
})

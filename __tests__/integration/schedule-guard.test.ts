// The schedule guard against the GitHub API stand-in: it reads the real
// rotation-date variable over HTTP, and a skipped run writes only its notice,
// summary line and outputs (no secret, variable or issue is touched).
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { readConfig, type Config } from '../../src/config.js'
import { createOctokit } from '../../src/github/client.js'
import { setRepositoryVariable } from '../../src/github/variables.js'
import { applyScheduleGuard, variableReader } from '../../src/schedule-guard.js'
import { startGitHubStandIn, type StandIn } from '../../sandbox/github-api/server.js'

const OWNER = 'acme'
const REPO = 'cloudbox'
const FULL = 'github_pat_full_access'
const NO_VARIABLES = 'github_pat_no_variables'

let standIn: StandIn
let dir: string

function config(token: string): Config {
  const inputs: Record<string, string> = {
    'secrets-token': token,
    'github-token': 'ghs_issues',
    repository: `${OWNER}/${REPO}`,
    'ssh-host': 'host.invalid',
    'ssh-user': 'deploy',
    'ssh-private-key': 'not contacted',
    'ssh-insecure-skip-host-key-check': 'true',
    'deploy-path': '/opt/cloudbox',
    'rotation-date-variable': 'JWT_SECRETS_ROTATED_AT'
  }
  return readConfig((name) => inputs[name] ?? '')
}

function env(event: string): NodeJS.ProcessEnv {
  const summary = join(dir, 'summary.md')
  const output = join(dir, 'output')
  writeFileSync(summary, '')
  writeFileSync(output, '')
  process.env.GITHUB_STEP_SUMMARY = summary
  process.env.GITHUB_OUTPUT = output
  return { GITHUB_EVENT_NAME: event, GITHUB_STEP_SUMMARY: summary }
}

beforeAll(async () => {
  standIn = await startGitHubStandIn({
    owner: OWNER,
    repo: REPO,
    environments: ['production'],
    validateResponses: true,
    tokens: {
      [FULL]: ['secrets', 'environments', 'variables', 'issues'],
      [NO_VARIABLES]: ['secrets', 'environments', 'issues']
    }
  })
  process.env.GITHUB_API_URL = standIn.url
  dir = mkdtempSync(join(tmpdir(), 'guard-'))
})

afterEach(() => {
  standIn.variables.clear()
  standIn.requests.length = 0
})

afterAll(async () => {
  await standIn.stop()
  rmSync(dir, { recursive: true, force: true })
  delete process.env.GITHUB_STEP_SUMMARY
  delete process.env.GITHUB_OUTPUT
})

describe('schedule guard against the API stand-in', () => {
  it('reads the variable, or reports it missing', async () => {
    const read = variableReader(config(FULL))
    expect(await read('JWT_SECRETS_ROTATED_AT')).toEqual({ status: 'missing' })
    await setRepositoryVariable(createOctokit(FULL), OWNER, REPO, 'JWT_SECRETS_ROTATED_AT', 'x')
    expect(await read('JWT_SECRETS_ROTATED_AT')).toEqual({ status: 'found', value: 'x' })
  })

  it('skips a scheduled run after a recent rotation: result skipped, summary line, nothing written', async () => {
    const recent = new Date(Date.now() - 3 * 86400000).toISOString()
    await setRepositoryVariable(createOctokit(FULL), OWNER, REPO, 'JWT_SECRETS_ROTATED_AT', recent)
    standIn.requests.length = 0
    const e = env('schedule')
    expect(await applyScheduleGuard(config(FULL), 30, e)).toBe(true)
    expect(readFileSync(e.GITHUB_STEP_SUMMARY as string, 'utf8')).toContain(
      'JWT secret rotation skipped'
    )
    expect(readFileSync(process.env.GITHUB_OUTPUT as string, 'utf8')).toMatch(
      /result<<.*\nskipped\n/
    )
    // One read, nothing else: no secret, no variable write, no issue.
    expect(standIn.requests.map((r) => `${r.method} ${r.status}`)).toEqual(['GET 200'])
    expect(standIn.issues).toHaveLength(0)
    expect(standIn.responseProblems).toEqual([])
  })

  it('lets the same variable through on dispatch, and an old one on schedule', async () => {
    await setRepositoryVariable(
      createOctokit(FULL),
      OWNER,
      REPO,
      'JWT_SECRETS_ROTATED_AT',
      new Date().toISOString()
    )
    expect(await applyScheduleGuard(config(FULL), 30, env('workflow_dispatch'))).toBe(false)
    await setRepositoryVariable(
      createOctokit(FULL),
      OWNER,
      REPO,
      'JWT_SECRETS_ROTATED_AT',
      new Date(Date.now() - 400 * 86400000).toISOString()
    )
    expect(await applyScheduleGuard(config(FULL), 30, env('schedule'))).toBe(false)
  })

  it('rotates (with a warning) when the token cannot read the variable', async () => {
    const e = env('schedule')
    expect(await applyScheduleGuard(config(NO_VARIABLES), 30, e)).toBe(false)
    expect(standIn.requests.some((r) => r.status === 403)).toBe(true)
    expect(readFileSync(e.GITHUB_STEP_SUMMARY as string, 'utf8')).toBe('')
  })
})

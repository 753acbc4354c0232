// Shared by the end-to-end suites: one sandbox and one GitHub stand-in per
// suite, and assertions about what a rotation left behind.
import { afterAll, beforeAll, beforeEach, expect } from '@jest/globals'
import { existsSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { parseEnv } from '../../src/host/dotenv.js'
import type { StandIn } from '../../sandbox/github-api/server.js'
import { startSandbox, type Credentials, type Sandbox } from '../../sandbox/index.js'
import {
  ENVIRONMENTS,
  runAction,
  sandboxInputs,
  seedCiSecretsFromHost,
  startSandboxGitHub,
  type ActionRun,
  type RunOptions
} from '../../sandbox/run-action.js'

export const KEYS = ['JWT_SECRET', 'JWT_REFRESH_SECRET']
export const SCOPES = ['repository', ...ENVIRONMENTS.map((e) => `environment:${e}`)]

export interface Bed {
  sandbox: Sandbox
  github: StandIn
  /** Runs the bundled action against the sandbox with these input overrides. */
  rotate(overrides?: Record<string, string>, options?: Partial<RunOptions>): Promise<ActionRun>
}

export async function startBed(options: { previousSecrets?: boolean } = {}): Promise<Bed> {
  const started = Date.now()
  const sandbox = await startSandbox({ previousSecrets: options.previousSecrets })
  const github = await startSandboxGitHub()
  process.stdout.write(`sandbox up in ${Date.now() - started} ms\n`)
  return {
    sandbox,
    github,
    // Through the fault-injecting wrapper (a pass-through when no fault is set).
    rotate: (overrides = {}, runOptions = {}) =>
      runAction(
        sandboxInputs(sandbox, { 'compose-command': sandbox.composeWrapper, ...overrides }),
        {
          githubUrl: github.url,
          ...runOptions
        }
      )
  }
}

export async function stopBed(bed: Bed | undefined): Promise<void> {
  await bed?.github.stop()
  await bed?.sandbox.stop()
}

/** One bed per suite, back to pristine (sandbox and stand-in faults) before each test. */
export function useBed(use: (bed: Bed) => void, options: { previousSecrets?: boolean } = {}): void {
  let bed: Bed | undefined
  beforeAll(async () => {
    bed = await startBed(options)
    use(bed)
  })
  afterAll(async () => {
    await stopBed(bed)
  })
  beforeEach(async () => {
    if (!bed) return
    await bed.sandbox.reset()
    // A team's repository: every listed scope holds the secrets with production's values.
    bed.github.reset()
    await seedCiSecrets(bed)
  })
}

/** Seeds every CI secret with the host's current values, as a team would have them. */
export async function seedCiSecrets(bed: Bed): Promise<Record<string, string>> {
  return seedCiSecretsFromHost(bed.github, bed.sandbox, KEYS)
}

export function ciSecret(bed: Bed, scope: string, name: string): string | undefined {
  return bed.github.secrets(scope).get(name)
}

export async function login(
  sandbox: Pick<Sandbox, 'http'>,
  who: Credentials
): Promise<{ access: string; cookie: string }> {
  const response = await sandbox.http('POST', '/api/auth/login', { body: who })
  expect(response.status).toBe(200)
  const cookie = (response.setCookie ?? []).find((c) => c.startsWith('refreshToken='))
  expect(cookie).toBeDefined()
  return { access: response.body.accessToken as string, cookie: (cookie as string).split(';')[0] }
}

/** Every line but the given keys' values is byte-identical. */
export function expectOnlyKeysChanged(before: string, after: string, keys: string[]): void {
  const a = before.split('\n')
  const b = after.split('\n')
  expect(b.length).toBe(a.length)
  const lines = new Set(
    parseEnv(before)
      .filter((e) => keys.includes(e.key))
      .map((e) => e.line - 1)
  )
  for (let i = 0; i < a.length; i++) {
    if (lines.has(i)) expect(b[i]).not.toBe(a[i])
    else expect(b[i]).toBe(a[i])
  }
}

export function fileMode(file: string): number {
  return statSync(file).mode & 0o777
}

export function journalOf(sandbox: Sandbox): string {
  return readFileSync(path.join(sandbox.deployPath, '.rotation', 'journal'), 'utf8')
}

export function lastIssue(bed: Bed): { title: string; body: string; labels: string[] } {
  const issue = bed.github.issues.at(-1)
  expect(issue).toBeDefined()
  return issue as { title: string; body: string; labels: string[] }
}

/** Explains a failed expectation about a run with its log. */
export function expectResult(run: ActionRun, result: string): void {
  if (run.outputs.result !== result) {
    throw new Error(
      `expected result ${result}, got ${run.outputs.result} (exit ${run.code})\n--- stdout\n${run.stdout.slice(-6000)}\n--- stderr\n${run.stderr.slice(-2000)}`
    )
  }
}

/**
 * Everything a run leaves for people to read: its log, outputs, summary, the
 * issues, the variables, and the host's journal, log and parameters.
 * `::add-mask::VALUE` is the runner's masking protocol: the runner consumes
 * those lines and never shows them, so they are the one expected place.
 */
export function readablePlaces(
  bed: { sandbox: Pick<Sandbox, 'deployPath'>; github: StandIn },
  run: ActionRun
): Record<string, string> {
  const rotation = path.join(bed.sandbox.deployPath, '.rotation')
  const read = (name: string): string =>
    existsSync(path.join(rotation, name)) ? readFileSync(path.join(rotation, name), 'utf8') : ''
  return {
    stdout: run.stdout
      .split('\n')
      .filter((line) => !line.startsWith('::add-mask::'))
      .join('\n'),
    stderr: run.stderr,
    outputs: JSON.stringify(run.outputs),
    summary: run.summary,
    issues: JSON.stringify(bed.github.issues),
    variables: JSON.stringify([...bed.github.variables]),
    journal: read('journal'),
    'host.log': read('host.log'),
    params: read('params')
  }
}

/** Where a value, or any 20-character piece of one, appears. */
export function leaks(values: string[], places: Record<string, string>): string[] {
  const found = new Set<string>()
  for (const value of values) {
    for (let i = 0; i + 20 <= value.length; i++) {
      const piece = value.slice(i, i + 20)
      for (const [where, text] of Object.entries(places)) {
        if (text.includes(piece)) found.add(`${where} holds a piece of a secret`)
      }
    }
  }
  return [...found]
}

// Runs the bundled action (dist/index.js) the way a GitHub runner does:
// INPUT_* variables with action.yml's defaults, GITHUB_OUTPUT and
// GITHUB_STEP_SUMMARY files, GITHUB_API_URL pointing at the stand-in.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import type { StandIn } from './github-api/server.js'
import type { Sandbox } from './index.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

export const OWNER = 'acme'
export const REPO = 'cloudbox'
export const ENVIRONMENTS = ['production', 'staging']
/** Stand-in tokens: the fine-grained PAT for secrets and variables, and the workflow token for issues. */
export const TOKENS = {
  secrets: 'github_pat_sandbox_secrets',
  issues: 'ghs_sandbox_issues',
  readOnly: 'github_pat_sandbox_nothing'
}

export interface ActionRun {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  outputs: Record<string, string>
  summary: string
  /** What the step saved with core.saveState (GITHUB_STATE): name → last value. */
  state: Record<string, string>
  /** The signals sent, in order, with ms since the start. */
  signalsSent: Array<{ signal: NodeJS.Signals; atMs: number }>
  durationMs: number
}

/** action.yml's defaults, with the runner's `${{ github.* }}` expressions resolved. */
export function actionDefaults(): Record<string, string> {
  const action = parse(readFileSync(path.join(ROOT, 'action.yml'), 'utf8')) as {
    inputs: Record<string, { default?: string }>
  }
  const defaults: Record<string, string> = {}
  for (const [name, input] of Object.entries(action.inputs)) {
    if (input.default === undefined) continue
    defaults[name] = String(input.default)
      .replace('${{ github.token }}', TOKENS.issues)
      .replace('${{ github.repository }}', `${OWNER}/${REPO}`)
  }
  return defaults
}

/** Inputs for a full rotation of the sandbox deployment. */
export function sandboxInputs(
  sandbox: Pick<Sandbox, 'ssh' | 'deployPath' | 'urls' | 'admin' | 'user'>,
  overrides: Record<string, string> = {}
): Record<string, string> {
  return {
    'secrets-token': TOKENS.secrets,
    environments: ENVIRONMENTS.join(','),
    'ssh-host': sandbox.ssh.host,
    'ssh-port': String(sandbox.ssh.port),
    'ssh-user': sandbox.ssh.user,
    'ssh-private-key': sandbox.ssh.privateKey,
    'ssh-known-hosts': sandbox.ssh.knownHosts,
    'deploy-path': sandbox.deployPath,
    'health-url': sandbox.urls.health,
    'health-timeout': '30',
    'login-url': sandbox.urls.login,
    'admin-check-url': sandbox.urls.adminCheck,
    'user-check-url': sandbox.urls.userCheck,
    'admin-credentials': JSON.stringify(sandbox.admin),
    'user-credentials': JSON.stringify(sandbox.user),
    reason: 'incident',
    ...overrides
  }
}

function parseOutputs(text: string): Record<string, string> {
  const outputs: Record<string, string> = {}
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const heredoc = /^([^<]+)<<(.+)$/.exec(lines[i])
    if (!heredoc) continue
    const value: string[] = []
    for (i++; i < lines.length && lines[i] !== heredoc[2]; i++) value.push(lines[i])
    outputs[heredoc[1]] = value.join('\n')
  }
  return outputs
}

export interface RunOptions {
  githubUrl: string
  entry?: string
  onStdout?: (text: string) => void
  /** Sends this signal when a stdout line matches. */
  signalWhen?: { pattern: RegExp; signal: NodeJS.Signals }
  /**
   * Cancels the step as the runner does when a stdout line matches: SIGINT,
   * SIGTERM 7.5 s later, SIGKILL 2.5 s after that (each only while it runs).
   */
  cancelWhen?: { pattern: RegExp; sigtermAfterMs?: number; sigkillAfterMs?: number }
  env?: Record<string, string>
}

export async function runAction(
  inputs: Record<string, string>,
  options: RunOptions
): Promise<ActionRun> {
  const dir = mkdtempSync(path.join(tmpdir(), 'action-run-'))
  const outputFile = path.join(dir, 'output')
  const summaryFile = path.join(dir, 'summary')
  const stateFile = path.join(dir, 'state')
  writeFileSync(outputFile, '')
  writeFileSync(summaryFile, '')
  writeFileSync(stateFile, '')
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    GITHUB_ACTIONS: 'true',
    GITHUB_API_URL: options.githubUrl,
    GITHUB_SERVER_URL: 'https://github.example',
    GITHUB_REPOSITORY: `${OWNER}/${REPO}`,
    GITHUB_RUN_ID: String(1000 + Math.floor(Math.random() * 9000)),
    GITHUB_RUN_ATTEMPT: '1',
    GITHUB_ACTOR: 'octocat',
    GITHUB_EVENT_NAME: 'workflow_dispatch',
    GITHUB_OUTPUT: outputFile,
    GITHUB_STEP_SUMMARY: summaryFile,
    GITHUB_STATE: stateFile,
    RUNNER_TEMP: dir,
    ...options.env
  }
  for (const [name, value] of Object.entries({ ...actionDefaults(), ...inputs })) {
    env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = value
  }
  const started = Date.now()
  const child = spawn(process.execPath, [options.entry ?? path.join(ROOT, 'dist/index.js')], {
    env,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  let signalled = false
  let exited = false
  const signalsSent: ActionRun['signalsSent'] = []
  const timers: NodeJS.Timeout[] = []
  const send = (signal: NodeJS.Signals): void => {
    if (exited) return
    signalsSent.push({ signal, atMs: Date.now() - started })
    child.kill(signal)
  }
  child.on('exit', () => (exited = true))
  child.stdout.on('data', (chunk: Buffer) => {
    const text = chunk.toString('utf8')
    stdout += text
    options.onStdout?.(text)
    if (!signalled && options.signalWhen && options.signalWhen.pattern.test(stdout)) {
      signalled = true
      child.kill(options.signalWhen.signal)
    }
    if (!signalled && options.cancelWhen && options.cancelWhen.pattern.test(stdout)) {
      signalled = true
      const term = options.cancelWhen.sigtermAfterMs ?? 7500
      const kill = term + (options.cancelWhen.sigkillAfterMs ?? 2500)
      send('SIGINT')
      timers.push(setTimeout(() => send('SIGTERM'), term))
      timers.push(setTimeout(() => send('SIGKILL'), kill))
    }
  })
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('close', (c, s) => resolve([c, s]))
  )
  for (const timer of timers) clearTimeout(timer)
  const run: ActionRun = {
    code,
    signal,
    stdout,
    stderr,
    outputs: parseOutputs(readFileSync(outputFile, 'utf8')),
    summary: readFileSync(summaryFile, 'utf8'),
    state: parseOutputs(readFileSync(stateFile, 'utf8')),
    signalsSent,
    durationMs: Date.now() - started
  }
  rmSync(dir, { recursive: true, force: true })
  return run
}

export async function startSandboxGitHub(): Promise<StandIn> {
  const { startGitHubStandIn } = await import('./github-api/server.js')
  return startGitHubStandIn({
    owner: OWNER,
    repo: REPO,
    environments: ENVIRONMENTS,
    tokens: {
      [TOKENS.secrets]: ['secrets', 'environments', 'variables'],
      [TOKENS.issues]: ['issues'],
      [TOKENS.readOnly]: []
    },
    validateResponses: true
  })
}

/** The repository as a team has it: every listed scope holds the CI secrets with production's values. */
export async function seedCiSecretsFromHost(
  github: StandIn,
  sandbox: Sandbox,
  keys = ['JWT_SECRET', 'JWT_REFRESH_SECRET']
): Promise<Record<string, string>> {
  const { envValue } = await import('../src/host/dotenv.js')
  const env = (await sandbox.readEnvFile()).toString('utf8')
  const values: Record<string, string> = {}
  for (const key of keys) values[key] = envValue(env, key) ?? ''
  for (const scope of ['repository', ...ENVIRONMENTS.map((e) => `environment:${e}`)]) {
    for (const key of keys) github.secrets(scope).set(key, values[key])
  }
  return values
}

// The sandbox's shared model: the public types, where things live, and the
// state file that lets any process find and tear a sandbox down.

import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export interface Credentials {
  email: string
  password: string
}

export type ComposeFault = {
  /** Extended regex (grep -E) matched against the compose arguments joined by spaces, without the leading global options. */
  match: string
  action: 'fail' | 'hang' | 'slow' | 'run-then-fail' | 'run-then-exec'
  /** For `slow`: seconds to wait before running the real compose (default 10). */
  seconds?: number
  /** For `run-then-exec`: run with `sh -c` after the real compose; for `fail`: instead of it, its output as compose's error. */
  command?: string
  /** Fire only on the first `times` matching calls (default: every call). */
  times?: number
}

export interface Sandbox {
  workDir: string
  ssh: {
    host: '127.0.0.1'
    port: number
    user: string
    privateKey: string
    knownHosts: string
    fingerprint: string
    /** Files holding the two above, for the `ssh` CLI. */
    privateKeyPath: string
    knownHostsPath: string
  }
  deployPath: string
  composeFile: string
  /** Alternative compose files in deployPath: with and without `<KEY>_PREVIOUS` passed to backend/worker. */
  composeFiles: { dualSecret: string; singleSecret: string }
  dockerHost: string
  appPort: number
  postgresPort: number
  urls: { health: string; login: string; adminCheck: string; userCheck: string }
  admin: Credentials
  user: Credentials
  composeWrapper: string
  /** Every call of composeWrapper, one line each: `<UTC time>\t<pid>\t<fault action or pass>\t<args>`. */
  composeCallLog: string
  compose(args: string[], opts?: { input?: string }): Promise<ExecResult>
  psql(sql: string): Promise<string>
  readEnvFile(): Promise<Buffer>
  setComposeFaults(faults: ComposeFault[]): Promise<void>
  setAppHealthyOnlyWithSecret(jwtSecret: string | null): Promise<void>
  http(
    method: string,
    path: string,
    opts?: { body?: unknown; token?: string; cookie?: string }
  ): Promise<HttpResponse>
  reset(): Promise<void>
  stop(): Promise<void>
}

/** A JSON body parsed from the app or the engine (text when not JSON). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any

export interface HttpResponse {
  status: number
  body: Json
  setCookie?: string[]
}

export interface ExecResult {
  code: number
  stdout: string
  stderr: string
}

export interface StartOptions {
  /** Directory for everything the sandbox creates; must be empty, missing, or a previous sandbox's (torn down first). Default: a fresh temp dir. */
  workDir?: string
  /** Leave the sandbox running when this process exits (the CLI's `up`); otherwise it is torn down on exit, SIGINT and SIGTERM. */
  keep?: boolean
  log?: (line: string) => void
  /** docker-compose.prod.yml passes JWT_SECRET_PREVIOUS / JWT_REFRESH_SECRET_PREVIOUS (a dual-secret build). Default true. */
  previousSecrets?: boolean
  /** Use this engine instead of starting one (default: $DOCKER_HOST when set). */
  dockerHost?: string
}

export const HERE = path.dirname(fileURLToPath(import.meta.url))

export const APP_DIR = path.join(HERE, 'app')

export const IMAGE = 'cloudbox-sandbox/base:latest'

export const PROJECT = 'cloudbox'

export const COMPOSE_FILE = 'docker-compose.prod.yml'

export const DUAL_FILE = 'docker-compose.dual-secret.yml'

export const SINGLE_FILE = 'docker-compose.single-secret.yml'

export const STATE_FILE = 'sandbox-state.json'

export const PG_BIN = '/usr/lib/postgresql/15/bin'

export const REAL_COMPOSE =
  firstExisting(['/usr/bin/docker-compose', '/usr/local/bin/docker-compose']) ?? 'docker-compose'

export const DOCKER_CLI = firstExisting(['/usr/bin/docker', '/usr/local/bin/docker']) ?? 'docker'

export const SERVICES = [
  'init',
  'postgres',
  'redis',
  'backend',
  'worker',
  'frontend',
  'glitchtip-postgres',
  'glitchtip',
  'glitchtip-worker'
] as const

/** System directories dockerd / sshd create outside their configured roots. */
export const SYSTEM_DIRS = {
  docker: ['/etc/docker', '/run/docker', '/run/containerd'],
  sshd: ['/run/sshd'] // privilege separation directory
}

/** Everything needed to find and tear down a sandbox, persisted in <workDir>/sandbox-state.json (0600). */
export interface State {
  workDir: string
  ownDocker: boolean
  dockerHost: string
  dockerdPid?: number
  sshdPid?: number
  createdSystemDirs: string[]
  createdWorkDir: boolean
  /** Tears the sandbox down if the process that started it dies without stop(). */
  watchdogPid?: number
  deployPath: string
  previousSecrets: boolean
  sshPort: number
  appPort: number
  postgresPort: number
  admin: Credentials
  user: Credentials
  postgres: { user: string; password: string; db: string }
  /** The engine is a single-node Swarm (sandbox/swarm.ts): left before the engine stops. */
  swarm?: boolean
  /** Seed values for the pristine state (filled once the stack is up). */
  pristine?: {
    files: Record<string, { mode: number; sha256: string }>
    configHashes: Record<string, string>
  }
}

export function firstExisting(paths: string[]): string | undefined {
  return paths.find((p) => fs.existsSync(p))
}

export const sha256 = (data: string | Buffer) =>
  crypto.createHash('sha256').update(data).digest('hex')

export function writeState(state: State) {
  fs.writeFileSync(path.join(state.workDir, STATE_FILE), JSON.stringify(state, null, 2) + '\n', {
    mode: 0o600
  })
}

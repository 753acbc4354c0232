// The sandbox deployment: a CloudBox-shaped host on loopback for the e2e
// tests and the demo. A private Docker engine (or the one DOCKER_HOST points
// to), the real docker-compose 1.29 driving CloudBox's services built from a
// locally imported tiny rootfs with the host's /usr mounted read-only (real
// PostgreSQL, a stand-in backend in sandbox/app/server.mjs), and a real
// OpenSSH sshd with a pinned host key. How it is built: sandbox/README.md.

import { spawn, spawnSync } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import http from 'node:http'
import { createRequire } from 'node:module'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'

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

const HERE = path.dirname(fileURLToPath(import.meta.url))
const APP_DIR = path.join(HERE, 'app')
const IMAGE = 'cloudbox-sandbox/base:latest'
const PROJECT = 'cloudbox'
const COMPOSE_FILE = 'docker-compose.prod.yml'
const DUAL_FILE = 'docker-compose.dual-secret.yml'
const SINGLE_FILE = 'docker-compose.single-secret.yml'
const STATE_FILE = 'sandbox-state.json'
const PG_BIN = '/usr/lib/postgresql/15/bin'
const REAL_COMPOSE =
  firstExisting(['/usr/bin/docker-compose', '/usr/local/bin/docker-compose']) ?? 'docker-compose'
const DOCKER_CLI = firstExisting(['/usr/bin/docker', '/usr/local/bin/docker']) ?? 'docker'
const SERVICES = [
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
const SYSTEM_DIRS = {
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

function firstExisting(paths: string[]): string | undefined {
  return paths.find((p) => fs.existsSync(p))
}

// ---------------------------------------------------------------- helpers

/** Runs a command, collecting its output (never rejects on a non-zero exit). */
export function runCommand(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string | Buffer; timeoutMs?: number } = {}
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => err.push(d))
    const timer = opts.timeoutMs
      ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs).unref()
      : undefined
    child.on('error', reject)
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer)
      resolve({
        code: code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8')
      })
    })
    child.stdin.on('error', () => {})
    child.stdin.end(opts.input ?? '')
  })
}

async function mustRun(cmd: string, args: string[], opts: Parameters<typeof runCommand>[2] = {}) {
  const r = await runCommand(cmd, args, opts)
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${(r.stderr || r.stdout).trim()}`)
  }
  return r
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function sleepSync(ms: number) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 100
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const value = await probe()
      if (value !== undefined) return value
    } catch (err) {
      lastError = err
    }
    if (Date.now() > deadline) {
      const detail = lastError instanceof Error ? `: ${lastError.message}` : ''
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`)
    }
    await sleep(intervalMs)
  }
}

async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const s = net.createServer()
          s.once('error', reject)
          s.listen(0, '127.0.0.1', () => resolve(s))
        })
    )
  )
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port)
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  return ports
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

function alive(pid: number | undefined): boolean {
  if (!pid) return false
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  // A zombie (exited, not yet reaped) counts as gone.
  try {
    return statOf(pid)?.state !== 'Z'
  } catch {
    return true
  }
}

function statOf(pid: number): { ppid: number; state: string; comm: string } | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    const close = text.lastIndexOf(')')
    const fields = text.slice(close + 2).split(' ')
    return {
      state: fields[0],
      ppid: Number(fields[1]),
      comm: text.slice(text.indexOf('(') + 1, close)
    }
  } catch {
    return undefined
  }
}

function allPids(): number[] {
  return fs
    .readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
}

function descendants(root: number): number[] {
  const children = new Map<number, number[]>()
  for (const pid of allPids()) {
    const st = statOf(pid)
    if (!st) continue
    children.set(st.ppid, [...(children.get(st.ppid) ?? []), pid])
  }
  const out: number[] = []
  const queue = [root]
  while (queue.length) {
    for (const c of children.get(queue.shift()!) ?? []) {
      out.push(c)
      queue.push(c)
    }
  }
  return out
}

function killTree(pid: number | undefined, timeoutMs: number) {
  if (!pid || !alive(pid)) return
  const tree = [pid, ...descendants(pid)]
  try {
    process.kill(pid, 'SIGTERM')
  } catch {
    /* gone */
  }
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline && alive(pid)) sleepSync(50)
  for (const p of tree) {
    try {
      if (alive(p)) process.kill(p, 'SIGKILL')
    } catch {
      /* gone */
    }
  }
}

function dockerApi(socketPath: string, method: string, apiPath: string): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path: apiPath, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let body: unknown = text
        try {
          body = JSON.parse(text)
        } catch {
          /* plain text */
        }
        resolve({ status: res.statusCode ?? 0, body })
      })
    })
    req.setTimeout(10000, () => req.destroy(new Error(`docker API ${method} ${apiPath} timed out`)))
    req.on('error', reject)
    req.end()
  })
}

function socketOf(dockerHost: string): string {
  if (!dockerHost.startsWith('unix://')) {
    throw new Error(`only unix:// docker hosts are supported, got ${dockerHost}`)
  }
  return dockerHost.slice('unix://'.length)
}

const sha256 = (data: string | Buffer) => crypto.createHash('sha256').update(data).digest('hex')

/** Same format as sandbox/app/server.mjs: scrypt$<salt b64>$<key b64>. */
function hashPassword(password: string): string {
  const salt = crypto.randomBytes(16)
  return `scrypt$${salt.toString('base64')}$${crypto.scryptSync(password, salt, 32).toString('base64')}`
}
function verifyPassword(password: string, stored: string): boolean {
  const [scheme, salt, key] = stored.split('$')
  if (scheme !== 'scrypt' || !salt || !key) return false
  const expected = Buffer.from(key, 'base64')
  return crypto.timingSafeEqual(
    expected,
    crypto.scryptSync(password, Buffer.from(salt, 'base64'), expected.length)
  )
}

function writeState(state: State) {
  fs.writeFileSync(path.join(state.workDir, STATE_FILE), JSON.stringify(state, null, 2) + '\n', {
    mode: 0o600
  })
}

// ---------------------------------------------------------------- generated files

/** The fixture's .env with real random values, plus a sandbox section with the chosen ports. */
function buildEnv(
  fixture: string,
  values: Record<string, string>,
  extra: Record<string, string>
): string {
  let text = fixture
  for (const [key, value] of Object.entries(values)) {
    const re = new RegExp(`^${key}=.*$`, 'm')
    if (!re.test(text)) throw new Error(`fixture has no ${key}=`)
    text = text.replace(re, () => `${key}=${value}`)
  }
  if (!text.endsWith('\n')) text += '\n'
  text += [
    '',
    '# ============ SANDBOX (added by sandbox/index.ts) ============',
    '# Loopback ports chosen at random when the sandbox started',
    `APP_PORT=${extra.APP_PORT}`,
    `POSTGRES_PORT=${extra.POSTGRES_PORT}`,
    '# Regular (non-admin) user seeded by the stand-in backend',
    `SANDBOX_USER_EMAIL=${extra.SANDBOX_USER_EMAIL}`,
    `SANDBOX_USER_PASSWORD=${extra.SANDBOX_USER_PASSWORD}`,
    ''
  ].join('\n')
  return text
}

interface ComposeMounts {
  appDir: string
  nodeModules: string
  faultsDir: string
  hostDirs: string[]
}

function composeYaml(m: ComposeMounts, previousSecrets: boolean): string {
  const base = [
    '/usr:/usr:ro',
    '/etc/ld.so.cache:/etc/ld.so.cache:ro',
    ...m.hostDirs.map((d) => `${d}:${d}:ro`)
  ]
  const vols = (extra: string[] = []) =>
    [...base, `${m.appDir}:/app/src:ro`, ...extra]
      .map((v) => `      - ${JSON.stringify(v)}`)
      .join('\n')
  const common = (service: string) => `    image: ${IMAGE}
    container_name: cloudbox-${service}
    network_mode: host
    init: true
    stop_grace_period: 3s`
  const placeholder = (service: string, deps: string, extra = '') => `  ${service}:
${common(service)}
    restart: unless-stopped
    user: "\${CLOUDBOX_UID:-1001}:\${CLOUDBOX_GID:-1001}"
${deps}    command: ["node", "/app/src/placeholder.mjs", "${service}"]
    volumes:
${vols()}
${extra}`
  const previous = previousSecrets
    ? `      JWT_SECRET_PREVIOUS: "\${JWT_SECRET_PREVIOUS:-}"
      JWT_REFRESH_SECRET_PREVIOUS: "\${JWT_REFRESH_SECRET_PREVIOUS:-}"
`
    : ''
  const appEnv = `      NODE_ENV: production
      PORT: "\${APP_PORT:-3001}"
      FRONTEND_URL: "\${FRONTEND_URL}"
      DATABASE_URL: "postgresql://\${POSTGRES_USER:-cloudbox}:\${POSTGRES_PASSWORD}@127.0.0.1:\${POSTGRES_PORT}/\${POSTGRES_DB:-cloudbox}"
      REDIS_URL: "redis://:\${REDIS_PASSWORD}@127.0.0.1:6379"
      JWT_SECRET: "\${JWT_SECRET:?JWT_SECRET is required}"
      JWT_REFRESH_SECRET: "\${JWT_REFRESH_SECRET:?JWT_REFRESH_SECRET is required}"
${previous}      JWT_EXPIRES_IN: "\${JWT_EXPIRES_IN:-15m}"
      JWT_REFRESH_EXPIRES_IN: "\${JWT_REFRESH_EXPIRES_IN:-7d}"
      ENCRYPTION_KEY: "\${ENCRYPTION_KEY:?ENCRYPTION_KEY is required}"
      RUN_MIGRATIONS_ON_START: "\${RUN_MIGRATIONS_ON_START:-true}"
      ADMIN_EMAIL: "\${ADMIN_EMAIL:-}"
      ADMIN_PASSWORD: "\${ADMIN_PASSWORD:-}"
      SANDBOX_USER_EMAIL: "\${SANDBOX_USER_EMAIL:-}"
      SANDBOX_USER_PASSWORD: "\${SANDBOX_USER_PASSWORD:-}"
      SENTRY_DSN: "\${SENTRY_DSN:-}"`
  const healthy = (svc: string) => `      ${svc}:\n        condition: service_healthy\n`
  return `# CloudBox production compose file, sandbox edition (generated by sandbox/index.ts).
# Every container runs the host's binaries (/usr bind-mounted read-only) on
# the host network; every server listens on 127.0.0.1 only.
# Variant: ${previousSecrets ? 'dual-secret build (backend and worker also get the previous secrets)' : 'single-secret build (backend and worker get the current secrets only)'}
version: "3.8"

services:
  init:
${common('init')}
    restart: "no"
    user: "0:0"
    command: ["node", "-e", "console.log('init: data directories ready for uid \${CLOUDBOX_UID:-1001}, postgres uid \${POSTGRES_UID:-70}')"]
    volumes:
${vols()}

  postgres:
${common('postgres')}
    restart: unless-stopped
    user: "\${POSTGRES_UID:-70}:\${POSTGRES_GID:-70}"
    stop_signal: SIGINT
    depends_on:
      init:
        condition: service_completed_successfully
    environment:
      PATH: "${PG_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
      PGPORT: "\${POSTGRES_PORT}"
      PGDATA: /var/lib/postgresql/data/pgdata
      POSTGRES_USER: "\${POSTGRES_USER:-cloudbox}"
      POSTGRES_PASSWORD: "\${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}"
      POSTGRES_DB: "\${POSTGRES_DB:-cloudbox}"
    command: ["sh", "/app/src/postgres-entrypoint.sh"]
    volumes:
      - postgres_data:/var/lib/postgresql/data
${vols()}
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -q -U \${POSTGRES_USER:-cloudbox} -d \${POSTGRES_DB:-cloudbox}"]
      interval: 1s
      timeout: 5s
      retries: 60

${placeholder(
  'redis',
  '',
  `    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
      timeout: 5s
      retries: 30
`
)}
  backend:
${common('backend')}
    restart: unless-stopped
    user: "\${CLOUDBOX_UID:-1001}:\${CLOUDBOX_GID:-1001}"
    depends_on:
${healthy('postgres')}${healthy('redis')}    environment:
${appEnv}
      SANDBOX_FAULTS_DIR: /sandbox-faults
    command: ["node", "/app/src/server.mjs"]
    volumes:
${vols([`${m.nodeModules}:/app/node_modules:ro`, `${m.faultsDir}:/sandbox-faults:ro`])}
    healthcheck:
      test: ["CMD", "wget", "-q", "--spider", "http://localhost:\${APP_PORT:-3001}/api/health/ping"]
      interval: 1s
      timeout: 5s
      retries: 30

  worker:
${common('worker')}
    restart: unless-stopped
    user: "\${CLOUDBOX_UID:-1001}:\${CLOUDBOX_GID:-1001}"
    depends_on:
${healthy('postgres')}${healthy('redis')}    environment:
${appEnv}
    command: ["node", "/app/src/server.mjs", "--worker"]
    volumes:
${vols([`${m.nodeModules}:/app/node_modules:ro`])}

${placeholder('frontend', '    depends_on:\n      - backend\n')}
${placeholder('glitchtip-postgres', '')}
${placeholder('glitchtip', '    depends_on:\n      - glitchtip-postgres\n      - redis\n')}
${placeholder('glitchtip-worker', '    depends_on:\n      - glitchtip\n')}
volumes:
  postgres_data:
`
}

/** /bin, /lib, /lib64 are symlinks into /usr on merged-/usr hosts (copied as such into the image); real directories are mounted. */
function hostDirsToMount(): string[] {
  return ['/bin', '/lib', '/lib64'].filter(
    (d) => fs.existsSync(d) && !fs.lstatSync(d).isSymbolicLink()
  )
}

/** The tiny base image: users, groups, mount points; binaries come from the host's /usr. */
async function buildRootfsTar(dir: string, tarPath: string) {
  const mk = async (p: string, mode = 0o755, uid = 0, gid = 0) => {
    const full = path.join(dir, p)
    await fsp.mkdir(full, { recursive: true })
    await fsp.chmod(full, mode)
    await fsp.chown(full, uid, gid)
  }
  for (const d of [
    'etc',
    'usr',
    'proc',
    'sys',
    'dev',
    'root',
    'sbin',
    'app/src',
    'app/node_modules',
    'sandbox-faults',
    'var/lib',
    'run'
  ]) {
    await mk(d)
  }
  await mk('tmp', 0o1777)
  await mk('var/tmp', 0o1777)
  await mk('home/cloudbox', 0o755, 1001, 1001)
  await mk('var/run/postgresql', 0o2775, 70, 70)
  await mk('var/lib/postgresql', 0o755, 70, 70)
  await mk('var/lib/postgresql/data', 0o700, 70, 70)
  for (const d of ['bin', 'lib', 'lib64']) {
    const st = await fsp.lstat(`/${d}`).catch(() => undefined)
    if (st?.isSymbolicLink()) await fsp.symlink(await fsp.readlink(`/${d}`), path.join(dir, d))
    else if (st) await mk(d)
  }
  const files: Record<string, string> = {
    'etc/passwd': [
      'root:x:0:0:root:/root:/bin/sh',
      'postgres:x:70:70:PostgreSQL:/var/lib/postgresql:/bin/sh',
      'cloudbox:x:1001:1001:CloudBox:/home/cloudbox:/bin/sh',
      'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
      ''
    ].join('\n'),
    'etc/group': ['root:x:0:', 'postgres:x:70:', 'cloudbox:x:1001:', 'nogroup:x:65534:', ''].join(
      '\n'
    ),
    'etc/nsswitch.conf': 'passwd: files\ngroup: files\nhosts: files dns\n',
    'etc/ld.so.cache': '',
    'etc/hostname': 'cloudbox\n'
  }
  for (const [p, content] of Object.entries(files)) await fsp.writeFile(path.join(dir, p), content)
  await mustRun('tar', ['--numeric-owner', '-C', dir, '-cf', tarPath, '.'])
}

// ---------------------------------------------------------------- teardown

function ancestorsOfSelf(): Set<number> {
  const mine = new Set<number>()
  for (let p: number | undefined = process.pid; p && p > 1; p = statOf(p)?.ppid) mine.add(p)
  return mine
}

function pidsUsing(workDir: string): number[] {
  const mine = ancestorsOfSelf()
  const out: number[] = []
  for (const pid of allPids()) {
    if (mine.has(pid)) continue
    try {
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ')
      const cwd = fs.readlinkSync(`/proc/${pid}/cwd`)
      if (cmdline.includes(workDir + '/') || cwd === workDir || cwd.startsWith(workDir + '/'))
        out.push(pid)
    } catch {
      /* gone or kernel thread */
    }
  }
  return out
}

function mountsUnder(dir: string): string[] {
  const unescape = (s: string) =>
    s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
  return fs
    .readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((line) => unescape(line.split(' ')[1] ?? ''))
    .filter((m) => m === dir || m.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length)
}

function otherProcessNamed(names: string[], exclude: number[]): boolean {
  return allPids().some(
    (pid) => !exclude.includes(pid) && names.includes(statOf(pid)?.comm ?? '') && alive(pid)
  )
}

/** Synchronous so that it also runs from process 'exit'. Idempotent. */
function teardownSync(state: State, log: (line: string) => void = () => {}) {
  const t0 = Date.now()
  const env = { ...process.env, DOCKER_HOST: state.dockerHost }
  // Unless the watchdog is the one tearing down (through cli.ts down).
  if (state.watchdogPid && !ancestorsOfSelf().has(state.watchdogPid))
    killTree(state.watchdogPid, 1000)
  if (state.ownDocker) {
    if (alive(state.dockerdPid)) {
      if (state.swarm) {
        spawnSync(DOCKER_CLI, ['swarm', 'leave', '--force'], {
          env,
          timeout: 30000,
          stdio: 'ignore'
        })
        // A bridge interface would outlive the engine in the host's network namespace.
        spawnSync(DOCKER_CLI, ['network', 'rm', 'docker_gwbridge'], {
          env,
          timeout: 15000,
          stdio: 'ignore'
        })
      }
      const ids = spawnSync(DOCKER_CLI, ['ps', '-aq'], { env, encoding: 'utf8', timeout: 15000 })
        .stdout?.split('\n')
        .filter(Boolean)
      if (ids?.length)
        spawnSync(DOCKER_CLI, ['rm', '-fv', ...ids], { env, timeout: 30000, stdio: 'ignore' })
      killTree(state.dockerdPid, 15000)
    }
  } else if (fs.existsSync(path.join(state.deployPath, COMPOSE_FILE))) {
    spawnSync(REAL_COMPOSE, ['-f', COMPOSE_FILE, 'down', '-v', '--remove-orphans', '-t', '1'], {
      cwd: state.deployPath,
      env,
      timeout: 60000,
      stdio: 'ignore'
    })
    spawnSync(DOCKER_CLI, ['rmi', IMAGE], { env, timeout: 30000, stdio: 'ignore' })
  }
  killTree(state.sshdPid, 3000)
  // Whatever still runs from the work dir: containerd shims, a hung compose wrapper, ssh sessions' children.
  for (const pid of pidsUsing(state.workDir)) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      /* gone */
    }
  }
  for (const m of mountsUnder(state.workDir)) {
    if (spawnSync('umount', [m], { stdio: 'ignore' }).status !== 0)
      spawnSync('umount', ['-l', m], { stdio: 'ignore' })
  }
  if (mountsUnder(state.workDir).length === 0) {
    if (state.createdWorkDir) fs.rmSync(state.workDir, { recursive: true, force: true })
    else
      for (const e of fs.readdirSync(state.workDir))
        fs.rmSync(path.join(state.workDir, e), { recursive: true, force: true })
  } else {
    log(`sandbox: mounts still present under ${state.workDir}; left it in place`)
  }
  const others = otherProcessNamed(['dockerd', 'containerd', 'sshd'], [])
  if (!others) {
    for (const d of state.createdSystemDirs) fs.rmSync(d, { recursive: true, force: true })
  }
  log(`sandbox: stopped in ${Date.now() - t0} ms`)
}

/** Tears down the sandbox whose state is in `workDir` (the CLI's `down`). */
export function stopSandboxAt(workDir: string, log?: (line: string) => void): boolean {
  const file = path.join(path.resolve(workDir), STATE_FILE)
  if (!fs.existsSync(file)) return false
  teardownSync(JSON.parse(fs.readFileSync(file, 'utf8')) as State, log)
  return true
}

// ---------------------------------------------------------------- start

async function startDockerd(state: State, log: (line: string) => void) {
  const d = path.join(state.workDir, 'd')
  const sock = path.join(d, 'docker.sock')
  if (path.join(d, 'exec', 'containerd', 'containerd.sock.ttrpc').length > 100) {
    throw new Error(
      `workDir ${state.workDir} is too long for the engine's unix sockets; use a shorter one`
    )
  }
  for (const dir of SYSTEM_DIRS.docker) if (!fs.existsSync(dir)) state.createdSystemDirs.push(dir)
  await fsp.writeFile(path.join(d, 'daemon.json'), '{}\n')
  let lastLog = ''
  for (const driver of [undefined, 'vfs']) {
    const args = [
      '--host',
      `unix://${sock}`,
      '--data-root',
      path.join(d, 'data'),
      '--exec-root',
      path.join(d, 'exec'),
      '--pidfile',
      path.join(d, 'docker.pid'),
      '--config-file',
      path.join(d, 'daemon.json'),
      '--bridge=none',
      '--iptables=false',
      '--ip6tables=false',
      '--ip-masq=false',
      '--log-level=warn',
      ...(driver ? [`--storage-driver=${driver}`] : [])
    ]
    const logFile = path.join(d, 'dockerd.log')
    const fd = fs.openSync(logFile, 'a')
    const child = spawn('dockerd', args, { detached: true, stdio: ['ignore', fd, fd] })
    child.on('error', () => {})
    child.unref()
    fs.closeSync(fd)
    state.dockerdPid = child.pid
    writeState(state)
    try {
      await waitFor(
        'dockerd',
        async () => {
          if (!alive(child.pid)) throw new Error('dockerd exited')
          const r = await dockerApi(sock, 'GET', '/_ping')
          return r.status === 200 ? true : undefined
        },
        30000
      )
      log(`sandbox: dockerd up (pid ${child.pid}${driver ? `, ${driver}` : ''})`)
      return
    } catch (err) {
      lastLog = fs.readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n')
      log(`sandbox: dockerd${driver ? ` (${driver})` : ''} failed: ${(err as Error).message}`)
      killTree(child.pid, 5000)
      for (const m of mountsUnder(d)) spawnSync('umount', ['-l', m], { stdio: 'ignore' })
      fs.rmSync(path.join(d, 'data'), { recursive: true, force: true })
    }
  }
  throw new Error(`could not start dockerd; last log lines:\n${lastLog}`)
}

async function startSshd(state: State, log: (line: string) => void) {
  const dir = path.join(state.workDir, 'ssh')
  const hostKey = path.join(dir, 'ssh_host_ed25519_key')
  const userKey = path.join(dir, 'id_ed25519')
  await Promise.all([
    mustRun('ssh-keygen', [
      '-q',
      '-t',
      'ed25519',
      '-N',
      '',
      '-C',
      'cloudbox-sandbox-host',
      '-f',
      hostKey
    ]),
    mustRun('ssh-keygen', [
      '-q',
      '-t',
      'ed25519',
      '-N',
      '',
      '-C',
      'cloudbox-sandbox-deploy',
      '-f',
      userKey
    ])
  ])
  await fsp.copyFile(`${userKey}.pub`, path.join(dir, 'authorized_keys'))
  const config = [
    `Port ${state.sshPort}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${hostKey}`,
    `PidFile ${path.join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'StrictModes no',
    'AllowTcpForwarding yes',
    'PrintMotd no',
    'PrintLastLog no',
    'MaxStartups 100:30:200',
    'MaxSessions 50',
    'LogLevel INFO',
    `SetEnv DOCKER_HOST=${state.dockerHost}`,
    'Subsystem sftp internal-sftp',
    ''
  ].join('\n')
  const configPath = path.join(dir, 'sshd_config')
  await fsp.writeFile(configPath, config)
  for (const dir of SYSTEM_DIRS.sshd) {
    if (fs.existsSync(dir)) continue
    await fsp.mkdir(dir, { mode: 0o755 })
    state.createdSystemDirs.push(dir)
  }
  const logFile = path.join(dir, 'sshd.log')
  const fd = fs.openSync(logFile, 'a')
  const child = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', configPath], {
    detached: true,
    stdio: ['ignore', fd, fd]
  })
  child.on('error', () => {})
  child.unref()
  fs.closeSync(fd)
  state.sshdPid = child.pid
  writeState(state)
  await waitFor(
    'sshd',
    async () => {
      if (!alive(child.pid))
        throw new Error(`sshd exited: ${fs.readFileSync(logFile, 'utf8').trim()}`)
      return (await tcpOpen(state.sshPort)) ? true : undefined
    },
    10000,
    50
  )
  const pub = (await fsp.readFile(`${hostKey}.pub`, 'utf8')).trim().split(/\s+/)
  const knownHosts = `[127.0.0.1]:${state.sshPort} ${pub[0]} ${pub[1]}`
  const knownHostsPath = path.join(dir, 'known_hosts')
  await fsp.writeFile(knownHostsPath, knownHosts + '\n')
  const fingerprint = (await mustRun('ssh-keygen', ['-lf', `${hostKey}.pub`])).stdout.split(
    /\s+/
  )[1]
  log(`sandbox: sshd up on 127.0.0.1:${state.sshPort} (pid ${child.pid})`)
  return {
    privateKey: await fsp.readFile(userKey, 'utf8'),
    privateKeyPath: userKey,
    knownHosts,
    knownHostsPath,
    fingerprint
  }
}

function startWatchdog(workDir: string): number | undefined {
  const tsx = path.join(
    path.dirname(createRequire(import.meta.url).resolve('tsx/package.json')),
    'dist',
    'cli.mjs'
  )
  const script =
    'while kill -0 "$1" 2>/dev/null; do sleep 1; done; exec "$2" "$3" "$4" down --work-dir "$5"'
  const logFd = fs.openSync(path.join(workDir, 'watchdog.log'), 'a')
  const child = spawn(
    'sh',
    [
      '-c',
      script,
      'sandbox-watchdog',
      String(process.pid),
      process.execPath,
      tsx,
      path.join(HERE, 'cli.ts'),
      workDir
    ],
    { detached: true, stdio: ['ignore', logFd, logFd], cwd: '/' }
  )
  fs.closeSync(logFd)
  child.on('error', () => {})
  child.unref()
  return child.pid
}

export async function startSandbox(opts: StartOptions = {}): Promise<Sandbox> {
  const t0 = Date.now()
  const log = opts.log ?? (() => {})
  if (process.getuid?.() !== 0) throw new Error('the sandbox needs root (dockerd, sshd, chown)')

  let workDir: string
  let createdWorkDir = false
  if (opts.workDir) {
    workDir = path.resolve(opts.workDir)
    stopSandboxAt(workDir, log) // a previous sandbox left there
    if (fs.existsSync(workDir)) {
      if (fs.readdirSync(workDir).length > 0) throw new Error(`workDir ${workDir} is not empty`)
    } else {
      await fsp.mkdir(workDir, { recursive: true })
      createdWorkDir = true
    }
  } else {
    workDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'cbx-'))
    createdWorkDir = true
  }
  await fsp.chmod(workDir, 0o755)
  for (const d of ['d', 'ssh', 'bin', 'faults', 'image', PROJECT])
    await fsp.mkdir(path.join(workDir, d))
  await fsp.chmod(path.join(workDir, 'ssh'), 0o700)

  const externalHost = opts.dockerHost ?? process.env.DOCKER_HOST
  const [sshPort, appPort, postgresPort] = await freePorts(3)
  const pgPassword = crypto.randomBytes(24).toString('hex')
  const state: State = {
    workDir,
    ownDocker: !externalHost,
    dockerHost: externalHost || `unix://${path.join(workDir, 'd', 'docker.sock')}`,
    createdSystemDirs: [],
    createdWorkDir,
    deployPath: path.join(workDir, PROJECT),
    previousSecrets: opts.previousSecrets ?? true,
    sshPort,
    appPort,
    postgresPort,
    admin: { email: 'admin@example.com', password: crypto.randomBytes(18).toString('base64url') },
    user: { email: 'user@example.com', password: crypto.randomBytes(18).toString('base64url') },
    postgres: { user: 'cloudbox', password: pgPassword, db: 'cloudbox' }
  }
  writeState(state)

  let exitHandlers: (() => void) | undefined
  if (!opts.keep) {
    const onExit = () => teardownSync(state)
    const onSignal = (signal: NodeJS.Signals) => {
      teardownSync(state)
      process.exit(signal === 'SIGINT' ? 130 : 143)
    }
    process.once('exit', onExit)
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
    exitHandlers = () => {
      process.off('exit', onExit)
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    }
    // Under jest, `process` is a copy whose 'exit' and signal events never fire:
    // a detached watchdog tears the sandbox down once this process is gone.
    state.watchdogPid = startWatchdog(workDir)
    writeState(state)
  }

  try {
    const tarPath = path.join(workDir, 'image', 'rootfs.tar')
    // allSettled: on a failure, nothing may still be starting when the teardown runs.
    const [image, sshd, deployFiles] = await Promise.allSettled([
      (async () => {
        const built = buildRootfsTar(path.join(workDir, 'image', 'rootfs'), tarPath)
        if (state.ownDocker) await Promise.all([startDockerd(state, log), built])
        else {
          const ping = await dockerApi(socketOf(state.dockerHost), 'GET', '/_ping').catch(
            (err: Error) => ({ status: 0, body: err.message })
          )
          if (ping.status !== 200) {
            throw new Error(
              `the engine at DOCKER_HOST=${state.dockerHost} does not answer: ${ping.body}`
            )
          }
          await built
        }
        const env = { ...process.env, DOCKER_HOST: state.dockerHost }
        await mustRun(
          DOCKER_CLI,
          [
            'import',
            '--change',
            'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
            tarPath,
            IMAGE
          ],
          { env }
        )
        await fsp.rm(path.join(workDir, 'image'), { recursive: true, force: true })
        log(`sandbox: image ${IMAGE} imported (${Date.now() - t0} ms)`)
      })(),
      startSshd(state, log),
      writeDeployFiles(state)
    ])
    for (const r of [image, sshd, deployFiles]) if (r.status === 'rejected') throw r.reason
    const sshFacts = (sshd as PromiseFulfilledResult<Awaited<ReturnType<typeof startSshd>>>).value

    const sandbox = makeSandbox(state, sshFacts, log, () => {
      exitHandlers?.()
    })
    const up = await sandbox.compose(['up', '-d'])
    if (up.code !== 0) throw new Error(`docker-compose up -d failed: ${up.stderr.trim()}`)
    await waitHealthy(state, 120000).catch(async (err: Error) => {
      const logs = await sandbox.compose(['logs', '--no-color', '--tail', '20'])
      throw new Error(`${err.message}\n${logs.stdout}`)
    })
    // The pristine state reset() returns to.
    const files: Record<string, { mode: number; sha256: string }> = {}
    for (const name of await fsp.readdir(state.deployPath)) {
      const full = path.join(state.deployPath, name)
      files[name] = {
        mode: (await fsp.stat(full)).mode & 0o7777,
        sha256: sha256(await fsp.readFile(full))
      }
    }
    await fsp.mkdir(path.join(workDir, 'pristine'), { mode: 0o700 })
    for (const name of Object.keys(files)) {
      await fsp.copyFile(path.join(state.deployPath, name), path.join(workDir, 'pristine', name))
    }
    state.pristine = { files, configHashes: await configHashes(state) }
    writeState(state)
    log(`sandbox: up in ${Date.now() - t0} ms (workDir ${workDir})`)
    return sandbox
  } catch (err) {
    exitHandlers?.()
    teardownSync(state, log)
    throw err
  }
}

async function writeDeployFiles(state: State) {
  const bin = path.join(state.workDir, 'bin')
  const wrapper = (await fsp.readFile(path.join(HERE, 'compose-wrapper.sh'), 'utf8')).replace(
    /^REAL_COMPOSE=.*$/m,
    `REAL_COMPOSE=\${SANDBOX_REAL_COMPOSE:-${REAL_COMPOSE}}`
  )
  await fsp.writeFile(path.join(bin, 'compose-wrapper'), wrapper, { mode: 0o755 })
  await fsp.writeFile(path.join(bin, 'compose-faults'), '')

  const fixture = await fsp.readFile(path.join(HERE, 'cloudbox.env.production.example'), 'utf8')
  const b64 = (n: number) => crypto.randomBytes(n).toString('base64')
  const env = buildEnv(
    fixture,
    {
      POSTGRES_USER: state.postgres.user,
      POSTGRES_PASSWORD: state.postgres.password,
      POSTGRES_DB: state.postgres.db,
      REDIS_PASSWORD: crypto.randomBytes(24).toString('hex'),
      JWT_SECRET: b64(64),
      JWT_REFRESH_SECRET: b64(64),
      ENCRYPTION_KEY: b64(32),
      ADMIN_EMAIL: state.admin.email,
      ADMIN_PASSWORD: state.admin.password,
      GLITCHTIP_DB_PASSWORD: crypto.randomBytes(24).toString('hex'),
      GLITCHTIP_SECRET_KEY: b64(32)
    },
    {
      APP_PORT: String(state.appPort),
      POSTGRES_PORT: String(state.postgresPort),
      SANDBOX_USER_EMAIL: state.user.email,
      SANDBOX_USER_PASSWORD: state.user.password
    }
  )
  await fsp.writeFile(path.join(state.deployPath, '.env'), env, { mode: 0o600 })

  // Containers resolve node_modules from /app/src/server.mjs -> /app/node_modules.
  const jwtPkg = createRequire(import.meta.url).resolve('jsonwebtoken/package.json')
  const mounts: ComposeMounts = {
    appDir: APP_DIR,
    nodeModules: path.dirname(path.dirname(jwtPkg)),
    faultsDir: path.join(state.workDir, 'faults'),
    hostDirs: hostDirsToMount()
  }
  const dual = composeYaml(mounts, true)
  const single = composeYaml(mounts, false)
  await fsp.writeFile(path.join(state.deployPath, DUAL_FILE), dual)
  await fsp.writeFile(path.join(state.deployPath, SINGLE_FILE), single)
  await fsp.writeFile(
    path.join(state.deployPath, COMPOSE_FILE),
    state.previousSecrets ? dual : single
  )
}

// ---------------------------------------------------------------- health and reset

interface ContainerInfo {
  service: string
  state: string
  status: string
  configHash: string
}

async function listContainers(state: State): Promise<ContainerInfo[]> {
  const filters = encodeURIComponent(
    // One-off containers (`docker-compose run`) are not services.
    JSON.stringify({
      label: [`com.docker.compose.project=${PROJECT}`, 'com.docker.compose.oneoff=False']
    })
  )
  const r = await dockerApi(
    socketOf(state.dockerHost),
    'GET',
    `/containers/json?all=1&filters=${filters}`
  )
  if (r.status !== 200) throw new Error(`docker API: ${r.status} ${JSON.stringify(r.body)}`)
  return (r.body as Array<{ Labels: Record<string, string>; State: string; Status: string }>).map(
    (c) => ({
      service: c.Labels['com.docker.compose.service'],
      state: c.State,
      status: c.Status,
      configHash: c.Labels['com.docker.compose.config-hash']
    })
  )
}

async function configHashes(state: State): Promise<Record<string, string>> {
  return Object.fromEntries((await listContainers(state)).map((c) => [c.service, c.configHash]))
}

/** Why the stack is not "all services up and healthy", or undefined when it is. */
function unhealthyReason(
  containers: ContainerInfo[],
  hashes?: Record<string, string>
): string | undefined {
  for (const service of SERVICES) {
    const c = containers.filter((x) => x.service === service)
    if (c.length !== 1) return `${service}: ${c.length} containers`
    if (hashes && hashes[service] !== c[0].configHash) return `${service}: configuration changed`
    if (service === 'init') {
      if (c[0].state !== 'exited' || !/^Exited \(0\)/.test(c[0].status))
        return `init: ${c[0].status}`
      continue
    }
    if (c[0].state !== 'running') return `${service}: ${c[0].state}`
    if (/\((health: starting|unhealthy)\)/.test(c[0].status)) return `${service}: ${c[0].status}`
  }
  return undefined
}

async function waitHealthy(state: State, timeoutMs: number) {
  await waitFor(
    'all services healthy',
    async () => {
      const reason = unhealthyReason(await listContainers(state))
      if (reason) throw new Error(reason)
      const ping = await httpRequest(state.appPort, 'GET', '/api/health/ping')
      if (ping.status !== 200) throw new Error(`/api/health/ping answered ${ping.status}`)
      return true
    },
    timeoutMs,
    100
  )
}

function httpRequest(
  port: number,
  method: string,
  urlPath: string,
  opts: { body?: unknown; token?: string; cookie?: string } = {}
): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body))
    const headers: Record<string, string> = { Connection: 'close' }
    if (payload) {
      headers['Content-Type'] = 'application/json'
      headers['Content-Length'] = String(payload.length)
    }
    if (opts.token) headers.Authorization = `Bearer ${opts.token}`
    if (opts.cookie) headers.Cookie = opts.cookie
    const req = http.request(
      { host: '127.0.0.1', port, method, path: urlPath, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          let body: unknown = text
          try {
            body = text ? JSON.parse(text) : undefined
          } catch {
            /* not JSON */
          }
          const setCookie = res.headers['set-cookie']
          resolve({ status: res.statusCode ?? 0, body, ...(setCookie ? { setCookie } : {}) })
        })
      }
    )
    req.setTimeout(10000, () => req.destroy(new Error(`${method} ${urlPath} timed out`)))
    req.on('error', reject)
    req.end(payload)
  })
}

function faultLine(f: ComposeFault): string {
  const actions = ['fail', 'hang', 'slow', 'run-then-fail', 'run-then-exec']
  if (!actions.includes(f.action)) throw new Error(`unknown compose fault action ${f.action}`)
  if (/[\t\n]/.test(f.match) || /\n/.test(f.command ?? '')) {
    throw new Error('a compose fault match cannot hold a tab or newline, nor its command a newline')
  }
  if (f.action === 'run-then-exec' && !f.command) throw new Error('run-then-exec needs a command')
  return [f.action, f.times ?? '', f.seconds ?? '', f.match, f.command ?? ''].join('\t')
}

function makeSandbox(
  state: State,
  sshFacts: Awaited<ReturnType<typeof startSshd>>,
  log: (line: string) => void,
  onStop: () => void
): Sandbox {
  const { workDir, deployPath } = state
  const bin = path.join(workDir, 'bin')
  const faultsFile = path.join(bin, 'compose-faults')
  const healthFault = path.join(workDir, 'faults', 'healthy-only-with-secret-sha256')
  const composeEnv = () => {
    const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: state.dockerHost }
    delete env.COMPOSE_FILE
    delete env.COMPOSE_PROJECT_NAME
    return env
  }
  const base = `http://localhost:${state.appPort}/api`
  let stopped = false

  const sandbox: Sandbox = {
    workDir,
    ssh: { host: '127.0.0.1', port: state.sshPort, user: 'root', ...sshFacts },
    deployPath,
    composeFile: COMPOSE_FILE,
    composeFiles: { dualSecret: DUAL_FILE, singleSecret: SINGLE_FILE },
    dockerHost: state.dockerHost,
    appPort: state.appPort,
    postgresPort: state.postgresPort,
    urls: {
      health: `${base}/health/ping`,
      login: `${base}/auth/login`,
      adminCheck: `${base}/health`,
      userCheck: `${base}/users/me`
    },
    admin: { ...state.admin },
    user: { ...state.user },
    composeWrapper: path.join(bin, 'compose-wrapper'),
    composeCallLog: path.join(bin, 'compose-calls.log'),

    compose(args, opts = {}) {
      return runCommand(REAL_COMPOSE, ['-f', COMPOSE_FILE, ...args], {
        cwd: deployPath,
        env: composeEnv(),
        input: opts.input
      })
    },

    async psql(sql) {
      const { user, db } = state.postgres
      const r = await sandbox.compose(
        ['exec', '-T', 'postgres', 'psql', '-U', user, '-d', db, '-At', '-v', 'ON_ERROR_STOP=1'],
        {
          input: sql
        }
      )
      if (r.code !== 0) throw new Error(`psql failed (${r.code}): ${r.stderr.trim()}`)
      return r.stdout
    },

    readEnvFile: () => fsp.readFile(path.join(deployPath, '.env')),

    async setComposeFaults(faults) {
      const text = faults.map((f) => faultLine(f) + '\n').join('')
      for (const name of await fsp.readdir(bin)) {
        if (name.startsWith('compose-faults.hits.'))
          await fsp.rm(path.join(bin, name), { force: true })
      }
      await fsp.writeFile(`${faultsFile}.tmp`, text)
      await fsp.rename(`${faultsFile}.tmp`, faultsFile)
    },

    async setAppHealthyOnlyWithSecret(jwtSecret) {
      if (jwtSecret === null) await fsp.rm(healthFault, { force: true })
      else {
        await fsp.writeFile(`${healthFault}.tmp`, sha256(jwtSecret) + '\n', { mode: 0o644 })
        await fsp.rename(`${healthFault}.tmp`, healthFault)
      }
    },

    http: (method, urlPath, opts) => httpRequest(state.appPort, method, urlPath, opts),

    async reset() {
      const t0 = Date.now()
      const pristine = state.pristine
      if (!pristine) throw new Error('sandbox never came up')
      await sandbox.setComposeFaults([])
      await sandbox.setAppHealthyOnlyWithSecret(null)
      await fsp.rm(sandbox.composeCallLog, { force: true })
      // Deploy dir: exactly the pristine files, bytes and modes.
      let filesChanged = false
      for (const name of await fsp.readdir(deployPath)) {
        if (!pristine.files[name]) {
          await fsp.rm(path.join(deployPath, name), { recursive: true, force: true })
        }
      }
      for (const [name, want] of Object.entries(pristine.files)) {
        const full = path.join(deployPath, name)
        const st = await fsp.lstat(full).catch(() => undefined)
        const same =
          st?.isFile() &&
          (st.mode & 0o7777) === want.mode &&
          sha256(await fsp.readFile(full)) === want.sha256
        if (same) continue
        filesChanged = filesChanged || name === '.env' || name === COMPOSE_FILE
        await fsp.rm(full, { recursive: true, force: true })
        await fsp.copyFile(path.join(workDir, 'pristine', name), `${full}.reset-tmp`)
        await fsp.chmod(`${full}.reset-tmp`, want.mode)
        await fsp.rename(`${full}.reset-tmp`, full)
      }
      // Containers: recreate only when something differs from the pristine stack.
      const reason = filesChanged
        ? 'deploy files changed'
        : unhealthyReason(await listContainers(state), pristine.configHashes)
      if (reason) {
        log(`sandbox: reset runs up -d (${reason})`)
        const up = await sandbox.compose(['up', '-d', '--remove-orphans'])
        if (up.code !== 0)
          throw new Error(`reset: docker-compose up -d failed: ${up.stderr.trim()}`)
      }
      await waitHealthy(state, 120000)
      // Database: seed users exactly, no refresh tokens.
      const client = new pg.Client({
        host: '127.0.0.1',
        port: state.postgresPort,
        user: state.postgres.user,
        password: state.postgres.password,
        database: state.postgres.db
      })
      await client.connect()
      try {
        const seeds: Array<[Credentials, string]> = [
          [state.admin, 'ADMIN'],
          [state.user, 'USER']
        ]
        await client.query('BEGIN')
        await client.query('DELETE FROM refresh_tokens')
        await client.query('DELETE FROM users WHERE email <> ALL($1)', [
          seeds.map(([c]) => c.email)
        ])
        const { rows } = await client.query<{ email: string; passwordHash: string; role: string }>(
          'SELECT email, "passwordHash", role FROM users'
        )
        for (const [cred, role] of seeds) {
          const row = rows.find((r) => r.email === cred.email)
          if (row && row.role === role && verifyPassword(cred.password, row.passwordHash)) continue
          await client.query(
            `INSERT INTO users (email, "passwordHash", role) VALUES ($1, $2, $3)
             ON CONFLICT (email) DO UPDATE SET "passwordHash" = EXCLUDED."passwordHash", role = EXCLUDED.role`,
            [cred.email, hashPassword(cred.password), role]
          )
        }
        await client.query('COMMIT')
      } finally {
        await client.end()
      }
      // Forget failed logins: the app clears its limiter when this file changes.
      await fsp.writeFile(
        path.join(workDir, 'faults', 'rate-limit-reset'),
        crypto.randomUUID() + '\n'
      )
      log(`sandbox: reset in ${Date.now() - t0} ms`)
    },

    async stop() {
      if (stopped) return
      stopped = true
      onStop()
      teardownSync(state, log)
    }
  }
  return sandbox
}

// The building blocks sandbox/swarm.ts reuses for its Swarm bed.
export {
  APP_DIR,
  DOCKER_CLI,
  IMAGE,
  PG_BIN,
  buildEnv,
  buildRootfsTar,
  freePorts,
  hostDirsToMount,
  httpRequest,
  mustRun,
  sha256,
  startDockerd,
  startSshd,
  startWatchdog,
  teardownSync,
  waitFor,
  writeState
}

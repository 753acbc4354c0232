// The Swarm bed: CloudBox as a stack on a single-node Swarm, for the
// target: swarm e2e suite and benchmark. The same private engine (no bridge,
// no iptables), tiny image, sshd and stand-in app as sandbox/index.ts; the
// engine is made a Swarm manager on 127.0.0.1 and its overlay networks
// (`ingress`, `docker_gwbridge`) are removed, so the services join the
// external `host` network and listen on 127.0.0.1 only. One Swarm bed at a
// time per machine: the Swarm's gossip port (7946) is fixed.
import crypto from 'node:crypto'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { parseEnv } from '../src/host/dotenv.js'
import {
  APP_DIR,
  DOCKER_CLI,
  IMAGE,
  sha256,
  writeState,
  type Credentials,
  type ExecResult,
  type HttpResponse,
  type Sandbox,
  type State
} from './common.js'
import { databaseClient } from './database.js'
import { buildEnv, httpRequest } from './deployment.js'
import { buildRootfsTar, hostDirsToMount, startDockerd } from './engine.js'
import { startWatchdog } from './index.js'
import { freePorts, mustRun, runCommand, waitFor } from './process.js'
import { startSshd } from './sshd.js'
import {
  SERVICES,
  STACK,
  STACK_FILE,
  stackYaml,
  type Mounts,
  type UpdateOrder
} from './swarm-stack.js'
import { teardownSync } from './teardown.js'

export type { UpdateOrder } from './swarm-stack.js'

export interface SwarmSandbox {
  workDir: string
  ssh: Sandbox['ssh']
  deployPath: string
  /** The stack file in deployPath (the action's compose-file). */
  stackFile: string
  stackName: string
  dockerHost: string
  appPort: number
  postgresPort: number
  urls: { health: string; login: string; adminCheck: string; userCheck: string }
  admin: Credentials
  user: Credentials
  docker(args: string[], opts?: { input?: string; env?: NodeJS.ProcessEnv }): Promise<ExecResult>
  psql(sql: string): Promise<string>
  readEnvFile(): Promise<Buffer>
  /** service → id of its running task's container (stack-file names). */
  runningContainers(): Promise<Record<string, string>>
  setAppHealthyOnlyWithSecret(jwtSecret: string | null): Promise<void>
  /** Rewrites the stack file with this update order for backend and worker, redeploys, and makes it the pristine state. */
  setUpdateOrder(order: UpdateOrder): Promise<void>
  http(
    method: string,
    path: string,
    opts?: { body?: unknown; token?: string; cookie?: string }
  ): Promise<HttpResponse>
  reset(): Promise<void>
  stop(): Promise<void>
}

/** The .env's values as the CLI's environment: what an operator's `set -a; . .env` gives. */
function deployEnv(envText: string, dockerHost: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DOCKER_HOST: dockerHost
  }
  for (const entry of parseEnv(envText)) env[entry.key] = entry.value
  return env
}

/** Makes the engine a single-node Swarm on loopback with no overlay network left. */
async function initSwarm(state: State, swarmPort: number, log: (line: string) => void) {
  const env = { ...process.env, DOCKER_HOST: state.dockerHost }
  await mustRun(
    DOCKER_CLI,
    ['swarm', 'init', '--advertise-addr', '127.0.0.1', '--listen-addr', `127.0.0.1:${swarmPort}`],
    { env }
  )
  // The routing mesh needs iptables; its bridge would be an interface in the
  // host's network namespace with a 172.x address.
  await waitFor(
    'the ingress network and docker_gwbridge to go',
    async () => {
      const networks = (
        await mustRun(DOCKER_CLI, ['network', 'ls', '--format', '{{.Name}}'], { env })
      ).stdout
        .split('\n')
        .filter(Boolean)
      if (networks.includes('ingress'))
        await runCommand(DOCKER_CLI, ['network', 'rm', 'ingress'], { env, input: 'y\n' })
      else if (networks.includes('docker_gwbridge'))
        await runCommand(DOCKER_CLI, ['network', 'rm', 'docker_gwbridge'], { env })
      else return fs.existsSync('/sys/class/net/docker_gwbridge') ? undefined : true
      return undefined
    },
    30000,
    200
  )
  log(`sandbox: single-node Swarm on 127.0.0.1:${swarmPort}, no overlay network`)
}

async function deployStack(state: State, deployPath: string): Promise<void> {
  const envText = await fsp.readFile(path.join(deployPath, '.env'), 'latin1')
  await mustRun(
    DOCKER_CLI,
    ['stack', 'deploy', '--resolve-image', 'never', '-c', STACK_FILE, STACK],
    { cwd: deployPath, env: deployEnv(envText, state.dockerHost) }
  )
}

async function docker(state: State, args: string[], input?: string): Promise<ExecResult> {
  return runCommand(DOCKER_CLI, args, {
    env: { ...process.env, DOCKER_HOST: state.dockerHost },
    input
  })
}

/** service → hash of its task template: what decides whether it rolls. */
async function templateHashes(state: State): Promise<Record<string, string>> {
  const hashes: Record<string, string> = {}
  for (const service of SERVICES) {
    const r = await docker(state, [
      'service',
      'inspect',
      '-f',
      '{{json .Spec.TaskTemplate}}',
      `${STACK}_${service}`
    ])
    hashes[service] = r.code === 0 ? sha256(r.stdout) : 'missing'
  }
  return hashes
}

/** Why the stack is not settled (one running task per service, no update under way, app healthy). */
async function unsettledReason(state: State): Promise<string | undefined> {
  const tasks = await docker(state, [
    'stack',
    'ps',
    STACK,
    '--filter',
    'desired-state=running',
    '--format',
    '{{.Name}} {{.CurrentState}}'
  ])
  if (tasks.code !== 0) return `docker stack ps: ${tasks.stderr.trim()}`
  for (const service of SERVICES) {
    const mine = tasks.stdout.split('\n').filter((l) => l.startsWith(`${STACK}_${service}.`))
    if (mine.length !== 1) return `${service}: ${mine.length} tasks`
    if (!/ Running /.test(`${mine[0]} `)) return `${service}: ${mine[0]}`
    const update = await docker(state, [
      'service',
      'inspect',
      '-f',
      '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}',
      `${STACK}_${service}`
    ])
    if (/updating|paused|rollback_started|rollback_paused/.test(update.stdout))
      return `${service}: update ${update.stdout.trim()}`
  }
  return undefined
}

async function waitSettled(state: State, timeoutMs: number) {
  await waitFor(
    'the stack to settle',
    async () => {
      const reason = await unsettledReason(state)
      if (reason) throw new Error(reason)
      const ping = await httpRequest(state.appPort, 'GET', '/api/health/ping')
      if (ping.status !== 200) throw new Error(`/api/health/ping answered ${ping.status}`)
      return true
    },
    timeoutMs,
    200
  )
}

export async function startSwarmSandbox(
  opts: { log?: (line: string) => void; updateOrder?: UpdateOrder } = {}
): Promise<SwarmSandbox> {
  const t0 = Date.now()
  const log = opts.log ?? (() => {})
  if (process.getuid?.() !== 0) throw new Error('the sandbox needs root (dockerd, sshd, chown)')
  const workDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'cbs-'))
  await fsp.chmod(workDir, 0o755)
  for (const d of ['d', 'ssh', 'faults', 'image', STACK]) await fsp.mkdir(path.join(workDir, d))
  await fsp.chmod(path.join(workDir, 'ssh'), 0o700)
  const [sshPort, appPort, postgresPort, swarmPort] = await freePorts(4)
  const state: State = {
    workDir,
    ownDocker: true,
    swarm: true,
    dockerHost: `unix://${path.join(workDir, 'd', 'docker.sock')}`,
    createdSystemDirs: [],
    createdWorkDir: true,
    deployPath: path.join(workDir, STACK),
    previousSecrets: false,
    sshPort,
    appPort,
    postgresPort,
    admin: { email: 'admin@example.com', password: crypto.randomBytes(18).toString('base64url') },
    user: { email: 'user@example.com', password: crypto.randomBytes(18).toString('base64url') },
    postgres: {
      user: 'cloudbox',
      password: crypto.randomBytes(24).toString('hex'),
      db: 'cloudbox'
    }
  }
  writeState(state)
  const onExit = () => teardownSync(state)
  process.once('exit', onExit)
  // Under jest, 'exit' never fires: the watchdog tears down once this process is gone.
  state.watchdogPid = startWatchdog(workDir)
  writeState(state)

  try {
    const tarPath = path.join(workDir, 'image', 'rootfs.tar')
    const jwtPkg = createRequire(import.meta.url).resolve('jsonwebtoken/package.json')
    const mounts: Mounts = {
      appDir: APP_DIR,
      nodeModules: path.dirname(path.dirname(jwtPkg)),
      faultsDir: path.join(workDir, 'faults'),
      hostDirs: hostDirsToMount()
    }
    const [engine, sshd, files] = await Promise.allSettled([
      (async () => {
        await Promise.all([
          startDockerd(state, log),
          buildRootfsTar(path.join(workDir, 'image', 'rootfs'), tarPath)
        ])
        await mustRun(
          DOCKER_CLI,
          [
            'import',
            '--change',
            'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
            tarPath,
            IMAGE
          ],
          { env: { ...process.env, DOCKER_HOST: state.dockerHost } }
        )
        await fsp.rm(path.join(workDir, 'image'), { recursive: true, force: true })
        await initSwarm(state, swarmPort, log)
      })(),
      startSshd(state, log),
      (async () => {
        const fixture = await fsp.readFile(
          path.join(APP_DIR, '..', 'cloudbox.env.production.example'),
          'utf8'
        )
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
            APP_PORT: String(appPort),
            POSTGRES_PORT: String(postgresPort),
            SANDBOX_USER_EMAIL: state.user.email,
            SANDBOX_USER_PASSWORD: state.user.password
          }
        )
        await fsp.writeFile(path.join(state.deployPath, '.env'), env, { mode: 0o600 })
        await fsp.writeFile(
          path.join(state.deployPath, STACK_FILE),
          stackYaml(mounts, opts.updateOrder ?? 'stop-first')
        )
      })()
    ])
    for (const r of [engine, sshd, files]) if (r.status === 'rejected') throw r.reason
    const sshFacts = (sshd as PromiseFulfilledResult<Awaited<ReturnType<typeof startSshd>>>).value
    await deployStack(state, state.deployPath)
    await waitSettled(state, 180000)
    const sandbox = makeSwarmSandbox(state, sshFacts, mounts, log, () =>
      process.off('exit', onExit)
    )
    await sandbox.setUpdateOrder(opts.updateOrder ?? 'stop-first')
    log(`sandbox: Swarm bed up in ${Date.now() - t0} ms (workDir ${workDir})`)
    return sandbox
  } catch (err) {
    process.off('exit', onExit)
    teardownSync(state, log)
    throw err
  }
}

function makeSwarmSandbox(
  state: State,
  sshFacts: Awaited<ReturnType<typeof startSshd>>,
  mounts: Mounts,
  log: (line: string) => void,
  onStop: () => void
): SwarmSandbox {
  const { workDir, deployPath } = state
  const healthFault = path.join(workDir, 'faults', 'healthy-only-with-secret-sha256')
  const base = `http://localhost:${state.appPort}/api`
  let pristine: { files: Record<string, Buffer>; hashes: Record<string, string> } | undefined
  let stopped = false

  const sandbox: SwarmSandbox = {
    workDir,
    ssh: { host: '127.0.0.1', port: state.sshPort, user: 'root', ...sshFacts },
    deployPath,
    stackFile: STACK_FILE,
    stackName: STACK,
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

    docker: (args, opts = {}) =>
      runCommand(DOCKER_CLI, args, {
        env: { ...process.env, DOCKER_HOST: state.dockerHost, ...opts.env },
        input: opts.input
      }),

    async psql(sql) {
      const client = await databaseClient(state)
      try {
        const result = await client.query({ text: sql, rowMode: 'array' })
        const rows = Array.isArray(result) ? (result.at(-1)?.rows ?? []) : result.rows
        return (rows as unknown[][]).map((r) => r.join('|')).join('\n')
      } finally {
        await client.end()
      }
    },

    readEnvFile: () => fsp.readFile(path.join(deployPath, '.env')),

    async runningContainers() {
      const r = await sandbox.docker([
        'ps',
        '--filter',
        `label=com.docker.stack.namespace=${STACK}`,
        '--filter',
        'status=running',
        '--format',
        '{{.Label "com.docker.swarm.service.name"}} {{.ID}}'
      ])
      const out: Record<string, string> = {}
      for (const line of r.stdout.split('\n').filter(Boolean)) {
        const [service, id] = line.split(' ')
        out[service.slice(STACK.length + 1)] = id
      }
      return out
    },

    async setAppHealthyOnlyWithSecret(jwtSecret) {
      if (jwtSecret === null) await fsp.rm(healthFault, { force: true })
      else {
        await fsp.writeFile(`${healthFault}.tmp`, sha256(jwtSecret) + '\n', { mode: 0o644 })
        await fsp.rename(`${healthFault}.tmp`, healthFault)
      }
    },

    async setUpdateOrder(order) {
      await fsp.writeFile(path.join(deployPath, STACK_FILE), stackYaml(mounts, order))
      await deployStack(state, deployPath)
      await waitSettled(state, 180000)
      const files: Record<string, Buffer> = {}
      for (const name of ['.env', STACK_FILE])
        files[name] = await fsp.readFile(path.join(deployPath, name))
      pristine = { files, hashes: await templateHashes(state) }
    },

    http: (method, urlPath, opts) => httpRequest(state.appPort, method, urlPath, opts),

    async reset() {
      const t0 = Date.now()
      if (!pristine) throw new Error('the Swarm bed never came up')
      await sandbox.setAppHealthyOnlyWithSecret(null)
      for (const name of await fsp.readdir(deployPath)) {
        if (!(name in pristine.files))
          await fsp.rm(path.join(deployPath, name), { recursive: true, force: true })
      }
      for (const [name, bytes] of Object.entries(pristine.files)) {
        const full = path.join(deployPath, name)
        await fsp.writeFile(`${full}.reset-tmp`, bytes, { mode: name === '.env' ? 0o600 : 0o644 })
        await fsp.rename(`${full}.reset-tmp`, full)
      }
      const hashes = await templateHashes(state)
      const changed = SERVICES.filter((s) => hashes[s] !== pristine?.hashes[s])
      const reason = changed.length > 0 ? `changed: ${changed.join(', ')}` : undefined
      if (reason ?? (await unsettledReason(state))) {
        log(`sandbox: reset redeploys the stack (${reason ?? 'not settled'})`)
        await deployStack(state, deployPath)
      }
      await waitSettled(state, 180000)
      await sandbox.psql('DELETE FROM refresh_tokens')
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

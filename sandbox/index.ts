// The sandbox deployment: a CloudBox-shaped host on loopback for the e2e
// tests and the demo. A private Docker engine (or the one DOCKER_HOST points
// to), the real docker-compose 1.29 driving CloudBox's services built from a
// locally imported tiny rootfs with the host's /usr mounted read-only (real
// PostgreSQL, a stand-in backend in sandbox/app/server.mjs), and a real
// OpenSSH sshd with a pinned host key. How it is built: sandbox/README.md.

import { spawn } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import {
  COMPOSE_FILE,
  DOCKER_CLI,
  DUAL_FILE,
  HERE,
  IMAGE,
  PROJECT,
  REAL_COMPOSE,
  SINGLE_FILE,
  Sandbox,
  StartOptions,
  State,
  sha256,
  writeState
} from './common.js'
import { reseedDatabase } from './database.js'
import {
  faultLine,
  httpRequest,
  unhealthyReason,
  waitHealthy,
  writeDeployFiles
} from './deployment.js'
import {
  buildRootfsTar,
  configHashes,
  dockerApi,
  listContainers,
  socketOf,
  startDockerd
} from './engine.js'
import { freePorts, mustRun, runCommand } from './process.js'
import { startSshd } from './sshd.js'
import { stopSandboxAt, teardownSync } from './teardown.js'

export type {
  ComposeFault,
  Credentials,
  ExecResult,
  HttpResponse,
  Json,
  Sandbox,
  StartOptions
} from './common.js'
export { runCommand } from './process.js'
export { stopSandboxAt } from './teardown.js'

export function startWatchdog(workDir: string): number | undefined {
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

export function makeSandbox(
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
      await reseedDatabase(state)
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

// Teardown: every process, mount, container and directory a sandbox made,
// found from its state file, removed synchronously (also from exit handlers).

import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { COMPOSE_FILE, DOCKER_CLI, IMAGE, REAL_COMPOSE, STATE_FILE, State } from './common.js'
import { alive, allPids, killTree, statOf } from './process.js'

export function ancestorsOfSelf(): Set<number> {
  const mine = new Set<number>()
  for (let p: number | undefined = process.pid; p && p > 1; p = statOf(p)?.ppid) mine.add(p)
  return mine
}

export function pidsUsing(workDir: string): number[] {
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

export function mountsUnder(dir: string): string[] {
  const unescape = (s: string) =>
    s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
  return fs
    .readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((line) => unescape(line.split(' ')[1] ?? ''))
    .filter((m) => m === dir || m.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length)
}

export function otherProcessNamed(names: string[], exclude: number[]): boolean {
  return allPids().some(
    (pid) => !exclude.includes(pid) && names.includes(statOf(pid)?.comm ?? '') && alive(pid)
  )
}

/** Synchronous so that it also runs from process 'exit'. Idempotent. */
export function teardownSync(state: State, log: (line: string) => void = () => {}) {
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

// Server-side SSH faults around the action's launch command. A second sshd
// runs beside the sandbox's with the same host key, authorized key and
// environment, on its own port, and with a ForceCommand that runs every
// command as asked except the first `sh -s launch`:
//   cut-after-launch          runs the launch, withholds its answer, waits
//                             until the detached host sequence journaled its
//                             run-start, then kills the session's sshd
//                             processes: the connection drops from the server
//                             side with the sequence running (an sshd restart,
//                             a NAT or firewall dropping the flow).
//   remove-lock-before-launch removes .rotation/lock (as an operator told to
//                             delete a "stale" lock would), then runs the
//                             launch as asked.
// Without a fault it only adds variables to the sessions' environment.
// Point the action at it with the `ssh-port` and `ssh-known-hosts` inputs.
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import type { Sandbox } from './index.js'

export type SshFault = 'cut-after-launch' | 'remove-lock-before-launch'

export interface FaultySshd {
  port: number
  /** known_hosts line for this port (same host key as the sandbox's sshd). */
  knownHosts: string
  /** Whether the fault fired (the launch command came through this sshd). */
  fired(): boolean
  /** What the withheld launch answer was (cut-after-launch), for diagnostics. */
  withheldAnswer(): string
  stop(): Promise<void>
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address() as net.AddressInfo
      server.close(() => resolve(address.port))
    })
  })
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

/** The ForceCommand: a pass-through but for the first launch command. */
export function forceCommandScript(fault: SshFault, deployPath: string, stateDir: string): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`
  return `#!/bin/sh
cmd=$SSH_ORIGINAL_COMMAND
case $cmd in
  internal-sftp | */sftp-server) exec /usr/lib/openssh/sftp-server ;;
esac
state=${q(stateDir)}
rot=${q(deployPath)}/.rotation
if [ "$cmd" = 'sh -s launch' ] && mkdir "$state/fired" 2>/dev/null; then
  case ${q(fault)} in
    remove-lock-before-launch)
      rm -rf "$rot/lock"
      ;;
    cut-after-launch)
      "\${SHELL:-/bin/sh}" -c "$cmd" >"$state/answer" 2>&1
      echo "exit=$?" >>"$state/answer"
      i=0
      until grep -q "$(printf '\\trun-start\\t')" "$rot/journal" 2>/dev/null; do
        i=$((i + 1))
        [ "$i" -gt 600 ] && break
        sleep 0.1
      done
      # Every sshd process of this session (the unprivileged child and its
      # monitor), never the listener.
      listener=$(cat "$state/sshd.pid")
      p=$PPID
      while [ "$p" -gt 1 ] && [ "$p" != "$listener" ]; do
        case $(cat "/proc/$p/comm" 2>/dev/null) in
          sshd*) kill -9 "$p" ;;
        esac
        p=$(cut -d' ' -f4 "/proc/$p/stat" 2>/dev/null || echo 1)
      done
      exit 1
      ;;
  esac
fi
exec "\${SHELL:-/bin/sh}" -c "$cmd"
`
}

/**
 * Starts the second sshd. `fault` null: no ForceCommand, commands run as
 * usual. `setEnv`: more variables in every session's environment (as a
 * host's login environment sets COMPOSE_PROJECT_NAME or DOCKER_CONTEXT).
 */
export async function startFaultySshd(
  sandbox: Sandbox,
  fault: SshFault | null,
  setEnv: Record<string, string> = {},
  /** More sshd_config lines, e.g. "AllowTcpForwarding no". */
  extraConfig = ''
): Promise<FaultySshd> {
  const sshDir = path.dirname(sandbox.ssh.privateKeyPath)
  const stateDir = await fsp.mkdtemp(path.join(sandbox.workDir, `ssh-fault-`))
  const port = await freePort()
  const wrapper = path.join(stateDir, 'force-command')
  if (fault !== null)
    await fsp.writeFile(wrapper, forceCommandScript(fault, sandbox.deployPath, stateDir), {
      mode: 0o755
    })
  // sshd takes the first SetEnv line only: the extra variables join it.
  const extraEnv = Object.entries(setEnv)
    .map(([name, value]) => ` ${name}=${value}`)
    .join('')
  const base = await fsp.readFile(path.join(sshDir, 'sshd_config'), 'utf8')
  const overridden = new Set(
    extraConfig
      .split('\n')
      .map((line) => line.trim().split(/\s/)[0].toLowerCase())
      .filter((word) => word !== '')
  )
  const config =
    base
      .split('\n')
      // sshd takes a keyword's first value: extraConfig's replace the base's.
      .filter((line) => !/^(Port|PidFile|ForceCommand)\s/.test(line))
      .filter((line) => !overridden.has(line.split(/\s/)[0].toLowerCase()))
      .map((line) => (line.startsWith('SetEnv ') ? line + extraEnv : line))
      .join('\n')
      .trimEnd() +
    `\nPort ${port}\nPidFile ${path.join(stateDir, 'sshd.pid')}\n` +
    (fault === null ? '' : `ForceCommand ${wrapper}\n`) +
    (extraConfig === '' ? '' : `${extraConfig.trimEnd()}\n`)
  const configPath = path.join(stateDir, 'sshd_config')
  await fsp.writeFile(configPath, config)
  const logFd = fs.openSync(path.join(stateDir, 'sshd.log'), 'a')
  const child: ChildProcess = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', configPath], {
    stdio: ['ignore', logFd, logFd]
  })
  fs.closeSync(logFd)
  child.on('error', () => {})
  const deadline = Date.now() + 10000
  while (!(await tcpOpen(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(
        `faulty sshd did not start: ${fs.readFileSync(path.join(stateDir, 'sshd.log'), 'utf8')}`
      )
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  // The ForceCommand tells the listener from the session's processes.
  await fsp.writeFile(path.join(stateDir, 'sshd.pid'), `${child.pid}\n`)
  const hostKey = (await fsp.readFile(path.join(sshDir, 'ssh_host_ed25519_key.pub'), 'utf8'))
    .trim()
    .split(/\s+/)
  return {
    port,
    knownHosts: `[127.0.0.1]:${port} ${hostKey[0]} ${hostKey[1]}`,
    fired: () => fs.existsSync(path.join(stateDir, 'fired')),
    withheldAnswer: () => {
      const file = path.join(stateDir, 'answer')
      return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : ''
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGTERM')
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3000))])
        if (child.exitCode === null) child.kill('SIGKILL')
      }
      await fsp.rm(stateDir, { recursive: true, force: true })
    }
  }
}

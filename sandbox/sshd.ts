// A real OpenSSH sshd on loopback with its own host key and config, logging
// in as root with a generated key pair.

import { spawn } from 'node:child_process'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import path from 'node:path'
import { SYSTEM_DIRS, State, writeState } from './common.js'
import { alive, mustRun, tcpOpen, waitFor } from './process.js'

export async function startSshd(state: State, log: (line: string) => void) {
  const dir = path.join(state.workDir, 'ssh')
  const hostKey = path.join(dir, 'ssh_host_ed25519_key')
  const userKey = path.join(dir, 'id_ed25519')
  const keygen = (comment: string, file: string) =>
    mustRun('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file])
  await Promise.all([
    keygen('cloudbox-sandbox-host', hostKey),
    keygen('cloudbox-sandbox-deploy', userKey)
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

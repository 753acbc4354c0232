// A non-root deploy user on the sandbox host, as many production hosts have:
// it logs in over the sandbox sshd (same key as root: the sshd has one
// authorized_keys file) and reaches the sandbox engine through the group of
// the engine's socket, not through root. Used by the e2e suites that prove the
// owner rule (a non-root SSH user keeps the .env's owner and group, or is
// refused in preflight).
import { spawnSync } from 'node:child_process'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import type { Sandbox } from './index.js'

export interface DeployUser {
  name: string
  uid: number
  gid: number
  /** A group the user is in besides its own, as an app group would be (e.g. `app`). */
  appGroup: { name: string; gid: number }
  /** Makes the deploy directory the user's (the rotation writes .rotation/ and the backups there). */
  ownDeployDir(): Promise<void>
  /** Gives the deploy directory back to root, as the sandbox made it. */
  releaseDeployDir(): Promise<void>
  remove(): Promise<void>
}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed: ${(r.stderr || r.stdout || '').trim()}`)
  }
  return r.stdout.trim()
}

/** The gid that owns the engine's unix socket: membership is what reaches the engine. */
async function socketGroup(dockerHost: string): Promise<number> {
  if (!dockerHost.startsWith('unix://')) {
    throw new Error(`the deploy user needs a unix socket engine, not DOCKER_HOST=${dockerHost}`)
  }
  const sock = dockerHost.slice('unix://'.length)
  const st = await fsp.stat(sock)
  if (st.gid === 0 || (st.mode & 0o060) !== 0o060) {
    throw new Error(
      `the engine socket ${sock} is not group read-writable by a non-root group (gid ${st.gid}): create a docker group before starting the engine`
    )
  }
  return st.gid
}

/**
 * Adds a user unique to this sandbox (named after its sshd port, so parallel
 * sandboxes never share one), in the engine socket's group and in an app
 * group of its own. Its home sits in the sandbox work dir.
 */
export async function addDeployUser(sandbox: Sandbox): Promise<DeployUser> {
  const name = `cbxd${sandbox.ssh.port}`
  const group = `cbxa${sandbox.ssh.port}`
  const home = path.join(sandbox.workDir, `home-${name}`)
  const engineGid = await socketGroup(sandbox.dockerHost)
  // sshd reads the one authorized_keys file as the logging-in user: let it
  // through the 0700 ssh dir (the private keys in it stay 0600).
  await fsp.chmod(path.dirname(sandbox.ssh.privateKeyPath), 0o711)
  run('groupadd', [group])
  try {
    run('useradd', ['-m', '-d', home, '-s', '/bin/sh', '-U', '-G', `${engineGid},${group}`, name])
    // '!' (useradd's default) is a locked account, which sshd without PAM refuses
    // even for a key; '*' has no password and is not locked.
    run('usermod', ['-p', '*', name])
  } catch (err) {
    spawnSync('userdel', [name])
    spawnSync('groupdel', [group])
    throw err
  }
  const uid = Number(run('id', ['-u', name]))
  const gid = Number(run('id', ['-g', name]))
  const appGid = Number(run('getent', ['group', group]).split(':')[2])
  return {
    name,
    uid,
    gid,
    appGroup: { name: group, gid: appGid },
    ownDeployDir: () => fsp.chown(sandbox.deployPath, uid, gid),
    releaseDeployDir: () => fsp.chown(sandbox.deployPath, 0, 0),
    async remove() {
      // userdel refuses while the user still runs something (an sshd session
      // closing): wait a little, then let the error say so.
      for (let i = 0; ; i++) {
        const r = spawnSync('userdel', [name], { encoding: 'utf8' })
        if (r.status === 0) break
        if (i === 20) throw new Error(`userdel ${name} failed: ${r.stderr.trim()}`)
        await new Promise((resolve) => setTimeout(resolve, 500))
      }
      spawnSync('groupdel', [group])
      await fsp.rm(home, { recursive: true, force: true })
    }
  }
}

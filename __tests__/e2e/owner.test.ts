// The owner rule with a real non-root SSH user (sandbox/deploy-user.ts): it
// logs in over the sandbox sshd and reaches the engine through the socket's
// group. A new .env it writes would be its own, so the rotation keeps the
// owner and group, or preflight refuses before anything changes.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { envValue } from '../../src/host/dotenv.js'
import { addDeployUser, type DeployUser } from '../../sandbox/deploy-user.js'
import {
  KEYS,
  ciSecret,
  expectOnlyKeysChanged,
  expectResult,
  fileMode,
  leaks,
  readablePlaces,
  seedCiSecrets,
  useBed,
  type Bed
} from './helpers.js'

/** An "app" user that owns the .env in the refused layout. */
const OTHER_UID = 65534

let bed: Bed
let deployUser: DeployUser
useBed((b) => (bed = b))

beforeAll(async () => {
  deployUser = await addDeployUser(bed.sandbox)
})
afterAll(async () => {
  // The sandbox may already be gone (hook order): its deploy dir with it.
  await deployUser?.releaseDeployDir().catch(() => {})
  await deployUser?.remove()
})
beforeEach(async () => {
  await deployUser.ownDeployDir()
})

/** Runs as the deploy user, through the real docker-compose (the fault wrapper's log is root's). */
function rotateAsDeployUser(): ReturnType<Bed['rotate']> {
  return bed.rotate({ 'ssh-user': deployUser.name, 'compose-command': 'docker-compose' })
}

async function envWithOwner(uid: number, gid: number, mode: number): Promise<string> {
  const envPath = path.join(bed.sandbox.deployPath, '.env')
  await fsp.chown(envPath, uid, gid)
  await fsp.chmod(envPath, mode)
  return envPath
}

describe('a non-root SSH user', () => {
  it('is refused in preflight when it could not keep the .env owner (app:deploy 0660), and nothing changes', async () => {
    const envPath = await envWithOwner(OTHER_UID, deployUser.gid, 0o660)
    const before = await fsp.readFile(envPath)
    const old = await seedCiSecrets(bed)

    const run = await rotateAsDeployUser()
    expectResult(run, 'failed')
    expect(run.stdout).toMatch(
      new RegExp(`\\.env is owned by uid ${OTHER_UID}, not by the SSH user.*chown the file`)
    )
    expect((await fsp.readFile(envPath)).equals(before)).toBe(true)
    const st = await fsp.stat(envPath)
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([OTHER_UID, deployUser.gid, 0o660])
    expect(
      (await fsp.readdir(bed.sandbox.deployPath)).filter((f) => f.startsWith('.env.'))
    ).toEqual([])
    for (const key of KEYS) expect(ciSecret(bed, 'repository', key)).toBe(old[key])
  })

  it('rotates an .env it owns in the app group (deploy:app 0640): owner, group and mode kept', async () => {
    const envPath = await envWithOwner(deployUser.uid, deployUser.appGroup.gid, 0o640)
    const before = await fsp.readFile(envPath, 'utf8')
    const old = await seedCiSecrets(bed)

    const run = await rotateAsDeployUser()
    expectResult(run, 'success')

    const after = await fsp.readFile(envPath, 'utf8')
    expectOnlyKeysChanged(before, after, KEYS)
    const st = await fsp.stat(envPath)
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([
      deployUser.uid,
      deployUser.appGroup.gid,
      0o640
    ])
    const fresh = envValue(after, 'JWT_SECRET') as string
    expect(fresh).not.toBe(old.JWT_SECRET)
    expect(ciSecret(bed, 'repository', 'JWT_SECRET')).toBe(fresh)
    const backend = await bed.sandbox.compose(['exec', '-T', 'backend', 'printenv', 'JWT_SECRET'])
    expect(backend.stdout.trim()).toBe(fresh)
    // The backups are the deploy user's own, 0600: readable by nobody else.
    const backups = (await fsp.readdir(bed.sandbox.deployPath)).filter((f) =>
      f.startsWith('.env.backup')
    )
    expect(backups.length).toBe(2)
    for (const b of backups) {
      const bst = await fsp.stat(path.join(bed.sandbox.deployPath, b))
      expect([bst.uid, fileMode(path.join(bed.sandbox.deployPath, b))]).toEqual([
        deployUser.uid,
        0o600
      ])
    }
    expect(leaks([fresh, old.JWT_SECRET], readablePlaces(bed, run))).toEqual([])
  })
})

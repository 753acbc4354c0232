// Production layouts the plain sandbox does not have: a symlinked .env
// (Capistrano-style shared/.env) and a compose file in a subfolder with a
// stale .env beside it. Both on the real engine.
import { describe, expect, it } from '@jest/globals'
import { promises as fsp } from 'node:fs'
import path from 'node:path'
import { envValue } from '../../src/host/dotenv.js'
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

let bed: Bed
useBed((b) => (bed = b))

/** What the running backend container was given, as compose started it. */
async function backendSecret(): Promise<string> {
  const r = await bed.sandbox.compose(['exec', '-T', 'backend', 'printenv', 'JWT_SECRET'])
  expect(r.code).toBe(0)
  return r.stdout.trim()
}

/** deploy-path/.env -> shared/.env, the target 0640 as a deploy tool leaves it. */
async function symlinkLayout(): Promise<{ target: string; link: string }> {
  const deploy = bed.sandbox.deployPath
  const link = path.join(deploy, '.env')
  const target = path.join(deploy, 'shared', '.env')
  await fsp.mkdir(path.dirname(target), { mode: 0o750 })
  await fsp.rename(link, target)
  await fsp.chmod(target, 0o640)
  await fsp.symlink('shared/.env', link)
  return { target, link }
}

describe('a symlinked .env', () => {
  it('is rotated through the link: target rotated, link, mode and owner kept, backups beside it', async () => {
    const { target, link } = await symlinkLayout()
    const before = await fsp.readFile(target, 'utf8')
    const ownerBefore = await fsp.stat(target)
    const old = await seedCiSecrets(bed)

    const run = await bed.rotate()
    expectResult(run, 'success')

    expect((await fsp.lstat(link)).isSymbolicLink()).toBe(true)
    expect(await fsp.readlink(link)).toBe('shared/.env')
    const after = await fsp.readFile(target, 'utf8')
    expectOnlyKeysChanged(before, after, KEYS)
    expect(fileMode(target)).toBe(0o640)
    const st = await fsp.stat(target)
    expect([st.uid, st.gid]).toEqual([ownerBefore.uid, ownerBefore.gid])

    const fresh = envValue(after, 'JWT_SECRET') as string
    expect(fresh).not.toBe(old.JWT_SECRET)
    expect(ciSecret(bed, 'repository', 'JWT_SECRET')).toBe(fresh)
    expect(await backendSecret()).toBe(fresh)

    // Backups sit beside the target (they survive a new release directory), 0600.
    const shared = path.dirname(target)
    expect(await fsp.readFile(path.join(shared, '.env.backup'), 'utf8')).toBe(before)
    expect(fileMode(path.join(shared, '.env.backup'))).toBe(0o600)
    const stamped = (await fsp.readdir(shared)).filter((f) => f.startsWith('.env.backup.'))
    expect(stamped).toHaveLength(1)
    expect(run.outputs['backup-path']).toBe(path.join(shared, stamped[0]))
    // Nothing staged is left, in the deploy dir or beside the target.
    expect((await fsp.readdir(shared)).filter((f) => f.includes('rotation'))).toEqual([])
    expect(
      (await fsp.readdir(bed.sandbox.deployPath)).filter((f) => f.startsWith('.env.'))
    ).toEqual([])
    expect(leaks([fresh, old.JWT_SECRET], readablePlaces(bed, run))).toEqual([])
  })

  it('rolls back through the link: the target byte for byte, the link kept', async () => {
    const { target, link } = await symlinkLayout()
    const before = await fsp.readFile(target)
    const old = await seedCiSecrets(bed)
    await bed.sandbox.setComposeFaults([{ match: '^up -d', action: 'fail', times: 1 }])

    const run = await bed.rotate()
    expectResult(run, 'rolled-back')

    expect((await fsp.lstat(link)).isSymbolicLink()).toBe(true)
    expect((await fsp.readFile(target)).equals(before)).toBe(true)
    expect(fileMode(target)).toBe(0o640)
    expect(await backendSecret()).toBe(old.JWT_SECRET)
    expect(ciSecret(bed, 'repository', 'JWT_SECRET')).toBe(old.JWT_SECRET)
  })
})

describe('a compose file in a subfolder', () => {
  it('compose reads the rotated .env (--env-file), not the stale .env beside the compose file', async () => {
    const deploy = bed.sandbox.deployPath
    const envPath = path.join(deploy, '.env')
    // The project name travels in the .env, as it would for a subfolder layout.
    const env = `${await fsp.readFile(envPath, 'utf8')}COMPOSE_PROJECT_NAME=cloudbox\n`
    await fsp.writeFile(envPath, env, { mode: 0o600 })
    await fsp.mkdir(path.join(deploy, 'deploy'))
    await fsp.copyFile(
      path.join(deploy, bed.sandbox.composeFile),
      path.join(deploy, 'deploy', 'docker-compose.prod.yml')
    )
    // A leftover .env beside the compose file: what compose reads without --env-file.
    const stale = env.replace(
      /^JWT_SECRET=.*$/m,
      'JWT_SECRET=stale-value-from-an-old-deploy-0123456789'
    )
    await fsp.writeFile(path.join(deploy, 'deploy', '.env'), stale, { mode: 0o600 })
    await seedCiSecrets(bed)

    const run = await bed.rotate({ 'compose-file': 'deploy/docker-compose.prod.yml' })
    expectResult(run, 'success')

    const fresh = envValue(await fsp.readFile(envPath, 'utf8'), 'JWT_SECRET') as string
    expect(ciSecret(bed, 'repository', 'JWT_SECRET')).toBe(fresh)
    expect(await backendSecret()).toBe(fresh)
    // The stale file was neither read nor rotated.
    expect(await fsp.readFile(path.join(deploy, 'deploy', '.env'), 'utf8')).toBe(stale)
  })
})

describe('an .env that is not UTF-8', () => {
  it('docker-compose 1.29 cannot load it: preflight refuses, naming the line, and changes nothing', async () => {
    const envPath = path.join(bed.sandbox.deployPath, '.env')
    const utf8 = await fsp.readFile(envPath)
    const latin1 = Buffer.concat([Buffer.from('# d\xe9ploiement\n', 'latin1'), utf8])
    await fsp.writeFile(envPath, latin1, { mode: 0o600 })
    const old = await seedCiSecrets(bed)

    const run = await bed.rotate()
    expectResult(run, 'failed')
    expect(run.stdout).toMatch(/\.env line 1 is not valid UTF-8/)
    expect((await fsp.readFile(envPath)).equals(latin1)).toBe(true)
    expect(ciSecret(bed, 'repository', 'JWT_SECRET')).toBe(old.JWT_SECRET)
  })
})

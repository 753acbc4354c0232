// The real host script's backup, swap and restore on a symlinked .env
// (deploy/.env -> shared/.env, as Capistrano-style deploys have it), sourced
// and run with sh: files land beside the target, the link stays, the target
// keeps its mode, and a link re-pointed after preflight fails the backup.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals'
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync
} from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { renderAssignments } from '../../src/host/plan.js'
import { hostScript } from '../../src/host/sequence.js'

const OLD = 'JWT_SECRET=old\n'
let root: string
let deploy: string
let shared: string

beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'link-'))
  deploy = path.join(root, 'current')
  shared = path.join(root, 'shared')
  mkdirSync(path.join(deploy, '.rotation'), { recursive: true, mode: 0o700 })
  mkdirSync(shared)
  writeFileSync(path.join(deploy, 'rotate-host.sh'), hostScript())
  writeFileSync(path.join(shared, '.env'), OLD, { mode: 0o640 })
  symlinkSync('../shared/.env', path.join(deploy, '.env'))
})
afterEach(() => rmSync(root, { recursive: true, force: true }))

/** Sources the script in the deploy dir with the parameters preflight would have passed. */
function inHost(params: Record<string, string | number>, body: string) {
  const script =
    `cd ${deploy}\nROTATE_HOST_SOURCED=1\n. ./rotate-host.sh\n` +
    renderAssignments({
      DEPLOY_DIR: deploy,
      ENV_FILE: '.env',
      COMPOSE_FILE: 'docker-compose.yml',
      STEP_TIMEOUT: 30,
      TERMINATED: 0,
      ENV_SHA256: createHash('sha256').update(OLD).digest('hex'),
      ENV_REAL_EXPECTED: path.join(shared, '.env'),
      ENV_MODE: '640',
      ENV_OWNER: `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`,
      BACKUP_PATH: path.join(shared, '.env.backup.20261205T010000Z'),
      BACKUP_RETENTION: 5,
      ...params
    }) +
    `env_paths\n${body}\n`
  return spawnSync('sh', ['-c', script], { encoding: 'utf8' })
}

describe('a symlinked .env on the host', () => {
  it('backs up beside the target, swaps and restores through the link: link and mode kept', () => {
    const target = path.join(shared, '.env')
    writeFileSync(path.join(deploy, '.rotation', 'env.new'), 'JWT_SECRET=new\n', { mode: 0o600 })
    const r = inHost(
      {},
      'do_step backup; echo "backup=$?"\ndo_step swap; echo "swap=$?"\ncp .env "$ROT/after-swap"\n' +
        'restore_backup "$BACKUP_PATH"; echo "restore=$?"'
    )
    expect(r.stdout).toMatch(/backup=0\nswap=0\nrestore=0/)
    expect(readFileSync(path.join(shared, '.env.backup.20261205T010000Z'), 'utf8')).toBe(OLD)
    expect(statSync(path.join(shared, '.env.backup')).mode & 0o777).toBe(0o600)
    expect(readFileSync(path.join(deploy, '.rotation', 'after-swap'), 'utf8')).toBe(
      'JWT_SECRET=new\n'
    )
    // The link is a link still, the target has the old bytes and its 0640 back.
    expect(lstatSync(path.join(deploy, '.env')).isSymbolicLink()).toBe(true)
    expect(readlinkSync(path.join(deploy, '.env'))).toBe('../shared/.env')
    expect(readFileSync(target, 'utf8')).toBe(OLD)
    expect(statSync(target).mode & 0o777).toBe(0o640)
    // Nothing staged left in either directory.
    expect(readdirSync(shared).filter((f) => f.includes('-new'))).toEqual([])
    expect(readdirSync(deploy).filter((f) => f.startsWith('.env.'))).toEqual([])
  })

  it('fails the backup when the link points elsewhere than in preflight, writing nothing', () => {
    // A deploy re-pointed the link between preflight and the backup step.
    const other = path.join(root, 'other')
    mkdirSync(other)
    writeFileSync(path.join(other, '.env'), OLD, { mode: 0o640 })
    unlinkSync(path.join(deploy, '.env'))
    symlinkSync('../other/.env', path.join(deploy, '.env'))

    const r = inHost({}, 'step backup; echo "backup=$?"')
    expect(r.stdout).toMatch(/backup=1/)
    const journal = readFileSync(path.join(deploy, '.rotation', 'journal'), 'utf8')
    expect(journal).toMatch(
      new RegExp(`step-end\\tbackup\\tfail\\t.*now points to ${other}/\\.env, not ${shared}/\\.env`)
    )
    expect(readdirSync(other)).toEqual(['.env'])
    expect(readdirSync(shared)).toEqual(['.env'])
  })
})

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

describe('durability of the swap', () => {
  // strace shows the syscalls: the new file's data must reach the disk
  // before the rename makes it the .env, and the directory after it.
  // .ci/run installs strace; without it this test fails rather than pass unchecked.
  it('syncs the staged file before renaming it over the target', () => {
    writeFileSync(path.join(deploy, '.rotation', 'env.new'), 'JWT_SECRET=new\n', { mode: 0o600 })
    const trace = path.join(root, 'trace')
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
        BACKUP_RETENTION: 5
      }) +
      'env_paths\ninstall_env "$ROT/env.new"; echo "install=$?"\n'
    const r = spawnSync(
      'strace',
      [
        '-f',
        '-o',
        trace,
        '-e',
        'trace=fsync,fdatasync,sync,syncfs,rename,renameat,renameat2',
        'sh',
        '-c',
        script
      ],
      { encoding: 'utf8' }
    )
    expect(r.stdout).toMatch(/install=0/)
    const calls = readFileSync(trace, 'utf8')
      .split('\n')
      .map((line) => /^\d+\s+(\w+)\(/.exec(line)?.[1])
      .filter((name): name is string => name !== undefined)
    const rename = calls.findIndex((c) => c.startsWith('rename'))
    expect(rename).toBeGreaterThan(0)
    expect(calls.slice(0, rename).some((c) => /sync/.test(c))).toBe(true)
    expect(calls.slice(rename + 1).some((c) => /sync/.test(c))).toBe(true)
    expect(readFileSync(path.join(shared, '.env'), 'utf8')).toBe('JWT_SECRET=new\n')
  })
})

describe('host.log redaction', () => {
  it("replaces every rotated key's value, quoted or not, old, staged or backed up, by ***", () => {
    const oldValue = 'old-secret-value-0123456789'
    const newValue = 'new-secret-value-9876543210'
    const prev = 'previous value with spaces'
    writeFileSync(
      path.join(shared, '.env'),
      `export JWT_SECRET="${oldValue}"\r\nJWT_SECRET_PREVIOUS='${prev}'\nOTHER=keep-this-visible-123\n`
    )
    writeFileSync(path.join(deploy, '.rotation', 'env.new'), `JWT_SECRET=${newValue}\n`)
    writeFileSync(
      path.join(deploy, '.rotation', 'host.log'),
      `ERROR: Invalid template: "${newValue}"\nold ${oldValue} and "${oldValue}"\n${prev}\nkeep-this-visible-123\n`
    )
    const r = inHost(
      { REDACT_KEYS: 'JWT_SECRET JWT_SECRET_PREVIOUS' },
      'redact_host_log; echo "rc=$?"'
    )
    expect(r.stdout).toMatch(/rc=0/)
    expect(readFileSync(path.join(deploy, '.rotation', 'host.log'), 'utf8')).toBe(
      'ERROR: Invalid template: "***"\nold *** and ***\n***\nkeep-this-visible-123\n'
    )
  })
})

// Single steps of the real host script, sourced and run with sh in a temp
// deploy dir: the exit status a step records, and backup retention.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals'
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { renderAssignments } from '../../src/host/plan.js'
import { hostScript } from '../../src/host/sequence.js'

let deploy: string
beforeEach(() => {
  deploy = mkdtempSync(path.join(tmpdir(), 'steps-'))
  mkdirSync(path.join(deploy, '.rotation'), { mode: 0o700 })
  writeFileSync(path.join(deploy, 'rotate-host.sh'), hostScript())
  writeFileSync(path.join(deploy, '.env'), 'JWT_SECRET=old\n', { mode: 0o640 })
})
afterEach(() => rmSync(deploy, { recursive: true, force: true }))

/** Sources the script in deployPath, sets the given parameters, runs `body`. */
function inHost(params: Record<string, string | number>, body: string) {
  const script =
    `cd ${deploy}\nROTATE_HOST_SOURCED=1\n. ./rotate-host.sh\n` +
    renderAssignments({
      DEPLOY_DIR: deploy,
      ENV_FILE: '.env',
      COMPOSE_FILE: 'docker-compose.yml',
      STEP_TIMEOUT: 30,
      TERMINATED: 0,
      ...params
    }) +
    `env_paths\n${body}\n`
  return spawnSync('sh', ['-c', script], { encoding: 'utf8' })
}

describe('a step records its real exit status', () => {
  it.each([
    [124, 'a timeout'],
    [137, 'a kill after the timeout'],
    [3, 'a plain failure']
  ])('exit %i (%s) reaches the journal', (code) => {
    const fake = path.join(deploy, 'fake-compose')
    writeFileSync(fake, `#!/bin/sh\nexit ${code}\n`, { mode: 0o755 })
    const r = inHost({ COMPOSE_CMD: fake }, 'step down; echo "step=$?"')
    expect(r.stdout).toMatch(/step=1/)
    const journal = readFileSync(path.join(deploy, '.rotation', 'journal'), 'utf8')
    expect(journal).toMatch(new RegExp(`\\tstep-end\\tdown\\tfail\\texit=${code}\\n`))
  })
})

describe('backup retention', () => {
  it("never deletes this run's own backup, even when others look newer (a skewed clock)", () => {
    // Five backups stamped in the future, as a host whose clock ran ahead left them.
    for (let i = 1; i <= 5; i++)
      writeFileSync(path.join(deploy, `.env.backup.2099010${i}T000000Z`), 'x')
    const sha = createHash('sha256').update('JWT_SECRET=old\n').digest('hex')
    const own = path.join(deploy, '.env.backup.20261205T010000Z')
    const r = inHost(
      { ENV_SHA256: sha, BACKUP_RETENTION: 3 },
      `BACKUP_PATH=${own}\ndo_step backup; echo "backup=$?"`
    )
    expect(r.stdout).toMatch(/backup=0/)
    const left = readdirSync(deploy)
      .filter((f) => /^\.env\.backup\.\d/.test(f))
      .sort()
    expect(left).toEqual([
      '.env.backup.20261205T010000Z',
      '.env.backup.20990104T000000Z',
      '.env.backup.20990105T000000Z'
    ])
    expect(readFileSync(own, 'utf8')).toBe('JWT_SECRET=old\n')
    expect(readFileSync(path.join(deploy, '.env.backup'), 'utf8')).toBe('JWT_SECRET=old\n')
  })
})

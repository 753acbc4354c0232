// The real host script's `status` (asked after a lost launch answer) and the
// claim that makes its "not-started" final, run locally with sh.
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { renderAssignments } from '../../src/host/plan.js'
import { hostScript } from '../../src/host/sequence.js'

let deploy: string
let rot: string
beforeEach(() => {
  deploy = mkdtempSync(path.join(tmpdir(), 'status-'))
  rot = path.join(deploy, '.rotation')
  mkdirSync(path.join(rot, 'lock'), { recursive: true })
})
afterEach(() => rmSync(deploy, { recursive: true, force: true }))

function host(command: string, runId = 'run-1'): string {
  const stdin =
    renderAssignments({
      DEPLOY_DIR: deploy,
      COMPOSE_FILE: 'docker-compose.yml',
      ENV_FILE: '.env',
      COMPOSE_CMD: 'docker-compose',
      STEP_TIMEOUT: 30,
      RUN_ID: runId,
      RUN_BY: 'test'
    }) + hostScript()
  const r = spawnSync('sh', ['-s', command], { input: stdin, encoding: 'utf8', cwd: deploy })
  return r.stdout
}

const holder = (run: string) =>
  writeFileSync(path.join(rot, 'lock', 'holder'), `run=${run}\nstarted=now\nby=test\n`)

describe('status after a lost launch answer', () => {
  it('not started yet: fences the run off, restores the last journal, releases the lock', () => {
    holder('run-1')
    writeFileSync(path.join(rot, 'journal.prev'), '1\tresult\t-\tsuccess\t\n')
    writeFileSync(path.join(rot, 'journal'), '')
    writeFileSync(path.join(rot, 'env.new'), 'JWT_SECRET=new\n')
    expect(host('status')).toMatch(/^status=not-started$/m)
    expect(existsSync(path.join(rot, 'lock'))).toBe(false)
    expect(existsSync(path.join(rot, 'env.new'))).toBe(false)
    expect(readFileSync(path.join(rot, 'journal'), 'utf8')).toContain('result')
  })

  it('a fenced run can never start: run refuses when it does not hold the claim', () => {
    holder('run-1')
    mkdirSync(path.join(rot, 'lock', 'claim'))
    writeFileSync(
      path.join(rot, 'params'),
      renderAssignments({ DEPLOY_DIR: deploy, RUN_ID: 'run-1' })
    )
    const r = spawnSync('sh', ['-c', `${hostScriptPath()} run ${path.join(rot, 'params')}`], {
      encoding: 'utf8',
      cwd: deploy
    })
    expect(r.status).toBe(1)
    expect(r.stderr).toMatch(/fenced off: not starting/)
    expect(existsSync(path.join(rot, 'lock', 'pid'))).toBe(false)
  })

  it('run refuses a lock that is not its own', () => {
    holder('someone-else')
    writeFileSync(
      path.join(rot, 'params'),
      renderAssignments({ DEPLOY_DIR: deploy, RUN_ID: 'run-1' })
    )
    const r = spawnSync('sh', ['-c', `${hostScriptPath()} run ${path.join(rot, 'params')}`], {
      encoding: 'utf8',
      cwd: deploy
    })
    expect(r.status).toBe(1)
    expect(existsSync(path.join(rot, 'lock', 'claim'))).toBe(false)
  })

  it('already claimed by the run: started', () => {
    holder('run-1')
    mkdirSync(path.join(rot, 'lock', 'claim'))
    expect(host('status')).toMatch(/^status=started$/m)
    expect(existsSync(path.join(rot, 'lock'))).toBe(true)
  })

  it("this run's run-start in the journal: started, even when the lock is gone", () => {
    rmSync(path.join(rot, 'lock'), { recursive: true })
    writeFileSync(path.join(rot, 'journal'), '1\trun-start\t-\timmediate\tpid=7 run=run-1\n')
    expect(host('status')).toMatch(/^status=started$/m)
  })

  it("the lock vanished before launch (or is another run's): not started", () => {
    rmSync(path.join(rot, 'lock'), { recursive: true })
    expect(host('status')).toMatch(/^status=not-started$/m)
    expect(host('launch')).toMatch(/^launched=no-lock$/m)
    mkdirSync(path.join(rot, 'lock'))
    holder('run-2')
    writeFileSync(path.join(rot, 'journal'), '1\trun-start\t-\timmediate\tpid=7 run=run-2\n')
    expect(host('status')).toMatch(/^status=not-started$/m)
    expect(existsSync(path.join(rot, 'lock'))).toBe(true)
  })
})

function hostScriptPath(): string {
  const file = path.join(deploy, 'rotate-host.sh')
  if (!existsSync(file)) writeFileSync(file, hostScript())
  return `sh ${file}`
}

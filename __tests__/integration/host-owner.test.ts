// The real host script's preflight, run as a non-root user (nobody) the way a
// deploy user would: it must say whether the new .env could keep the old
// one's owner and group, read through a symlink with stat -L.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { spawnSync } from 'node:child_process'
import {
  chmodSync,
  chownSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  mkdirSync
} from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parsePreflight, preflightProblems, renderAssignments } from '../../src/host/plan.js'
import { hostScript } from '../../src/host/sequence.js'

const NOBODY = 65534

let dir: string
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'owner-'))
  chmodSync(dir, 0o755)
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** A deploy dir owned by nobody whose .env has the given owner and mode. */
function deployWith(name: string, uid: number, gid: number, mode: number, link = false): string {
  const deploy = path.join(dir, name)
  mkdirSync(deploy)
  writeFileSync(path.join(deploy, 'docker-compose.prod.yml'), 'services: {}\n')
  const envPath = path.join(deploy, link ? 'real.env' : '.env')
  writeFileSync(envPath, 'JWT_SECRET=x\n')
  chownSync(envPath, uid, gid)
  chmodSync(envPath, mode)
  if (link) symlinkSync('real.env', path.join(deploy, '.env'))
  chownSync(deploy, NOBODY, NOBODY)
  return deploy
}

function preflightAsNobody(deploy: string): string {
  const stdin =
    renderAssignments({
      DEPLOY_DIR: deploy,
      COMPOSE_FILE: 'docker-compose.prod.yml',
      ENV_FILE: '.env',
      COMPOSE_CMD: 'auto',
      STEP_TIMEOUT: 30,
      RUN_ID: 'owner-test',
      RUN_BY: 'test'
    }) + hostScript()
  const r = spawnSync(
    'setpriv',
    [
      '--reuid',
      String(NOBODY),
      '--regid',
      String(NOBODY),
      '--clear-groups',
      'sh',
      '-s',
      'preflight'
    ],
    { input: stdin, encoding: 'utf8', cwd: dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } }
  )
  expect(r.status).toBe(0)
  return r.stdout
}

const config = {
  deployPath: '/d',
  composeFile: 'docker-compose.prod.yml',
  envFile: '.env',
  composeCommand: null,
  postgresService: 'postgres'
}

// Needs root (as CI runs) to create files owned by other users.
describe('non-root owner rule', () => {
  it('an .env owned by another user is refused', () => {
    const out = preflightAsNobody(deployWith('other-owner', 0, NOBODY, 0o660))
    const facts = parsePreflight(out)
    expect(facts.envOwnerKeep).toBe('no-owner')
    expect(preflightProblems(facts, config, false).join('\n')).toMatch(
      /owned by uid 0, not by the SSH user/
    )
  })

  it('an .env in a group the user is not in is refused', () => {
    const facts = parsePreflight(preflightAsNobody(deployWith('other-group', NOBODY, 0, 0o640)))
    expect(facts.envOwnerKeep).toBe('no-group')
    expect(preflightProblems(facts, config, false).join('\n')).toMatch(
      /belongs to group 0, which the SSH user is not in/
    )
  })

  it("the user's own .env passes, and a symlink reports its target's mode, not 777", () => {
    const facts = parsePreflight(
      preflightAsNobody(deployWith('own-link', NOBODY, NOBODY, 0o640, true))
    )
    expect(facts.envOwnerKeep).toBe('yes')
    expect(facts.envMode).toBe('640')
    expect(facts.envLink).toMatch(/own-link\/real\.env$/)
    expect(facts.envDirWritable).toBe('yes')
  })
})

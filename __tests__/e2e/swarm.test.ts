// target: swarm on a real single-node Swarm (sandbox/swarm.ts): a rotation
// that rolls only the services taking a key and leaves old tokens refused, a
// fault after the swap that rolls back by redeploying the backup, a dry run
// that changes nothing, and the preflight refusals. One bed for the suite.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals'
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import jwt from 'jsonwebtoken'
import { envValue } from '../../src/host/dotenv.js'
import type { StandIn } from '../../sandbox/github-api/server.js'
import { runAction, sandboxInputs, startSandboxGitHub } from '../../sandbox/run-action.js'
import { startSwarmSandbox, type SwarmSandbox } from '../../sandbox/swarm.js'
import {
  KEYS,
  SCOPES,
  expectOnlyKeysChanged,
  expectResult,
  leaks,
  login,
  readablePlaces
} from './helpers.js'

let sandbox: SwarmSandbox
let github: StandIn

beforeAll(async () => {
  const started = Date.now()
  sandbox = await startSwarmSandbox()
  github = await startSandboxGitHub()
  process.stdout.write(`Swarm bed up in ${Date.now() - started} ms\n`)
})
afterAll(async () => {
  await github?.stop()
  await sandbox?.stop()
})
beforeEach(async () => {
  await sandbox.reset()
  github.clearFaults()
})

// stack-name is left empty: the deploy directory's name, "cloudbox", is the stack's.
const rotate = (overrides: Record<string, string> = {}) =>
  runAction(
    sandboxInputs(sandbox, { target: 'swarm', 'compose-file': sandbox.stackFile, ...overrides }),
    { githubUrl: github.url }
  )

async function seedCiSecrets(): Promise<Record<string, string>> {
  const env = (await sandbox.readEnvFile()).toString('utf8')
  const values: Record<string, string> = {}
  for (const key of KEYS) values[key] = envValue(env, key) as string
  for (const scope of SCOPES) for (const key of KEYS) github.secrets(scope).set(key, values[key])
  return values
}

function journal(): string {
  return readFileSync(path.join(sandbox.deployPath, '.rotation', 'journal'), 'utf8')
}

function rotationFiles(): string[] {
  const dir = path.join(sandbox.deployPath, '.rotation')
  return existsSync(dir) ? readdirSync(dir) : []
}

/** Every process's argv on this machine, sampled until stopped. */
function sampleArgv(): { stop: () => Set<string> } {
  const seen = new Set<string>()
  let running = true
  const tick = (): void => {
    if (!running) return
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue
      try {
        seen.add(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '))
      } catch {
        // the process ended
      }
    }
    setTimeout(tick, 5)
  }
  tick()
  return {
    stop: () => {
      running = false
      return seen
    }
  }
}

describe('target swarm', () => {
  it('rotates the stack: only the services taking a key roll, old tokens are refused, no value on any argv', async () => {
    const old = await seedCiSecrets()
    const envBefore = (await sandbox.readEnvFile()).toString('utf8')
    const before = await login(sandbox, sandbox.user)
    const containersBefore = await sandbox.runningContainers()
    const argv = sampleArgv()
    const run = await rotate()
    const commandLines = argv.stop()
    expectResult(run, 'success')
    expect(run.stdout).toContain(
      'Host: docker stack on a Swarm manager, stack cloudbox deployed from docker-stack.yml'
    )
    expect(run.stdout).toMatch(
      /target swarm, stack cloudbox: 2 service\(s\) receive a rotated key and will roll .*backend \(environment JWT_SECRET, JWT_REFRESH_SECRET\), worker/
    )

    // The .env: only the two values changed; the stack runs them.
    const envAfter = (await sandbox.readEnvFile()).toString('utf8')
    expectOnlyKeysChanged(envBefore, envAfter, KEYS)
    for (const key of KEYS) {
      const value = envValue(envAfter, key) as string
      expect(value).not.toBe(old[key])
      for (const scope of SCOPES) expect(github.secrets(scope).get(key)).toBe(value)
    }
    expect(readFileSync(run.outputs['backup-path'], 'utf8')).toBe(envBefore)

    // Only backend and worker rolled; the database and redis kept their tasks.
    const containersAfter = await sandbox.runningContainers()
    expect(containersAfter.postgres).toBe(containersBefore.postgres)
    expect(containersAfter.redis).toBe(containersBefore.redis)
    expect(containersAfter.backend).not.toBe(containersBefore.backend)
    expect(containersAfter.worker).not.toBe(containersBefore.worker)
    const steps = [...journal().matchAll(/\tstep-end\t([^\t]+)\tok\t/g)].map((m) => m[1])
    expect(steps).toEqual([
      'swarm-prepare',
      'backup',
      'swap',
      'deploy',
      'converge',
      'revoke',
      'health'
    ])
    expect(journal()).toMatch(/\tstep-end\tconverge\tok\tupdated=backend,worker\n/)
    // downtime-seconds runs from the deploy (the rolling update's start) to the healthy check;
    // each rolled service journals when its old task stopped and its new one started.
    expect(Number(run.outputs['downtime-seconds'])).toBeGreaterThan(0)
    for (const service of ['backend', 'worker'])
      expect(journal()).toMatch(
        new RegExp(`\\tservice\\t${service}\\ttarget\\tstopped=\\d+ started=\\d+\\n`)
      )

    // Old tokens refused: the access token fails its signature, the refresh row is gone.
    expect((await sandbox.http('GET', '/api/users/me', { token: before.access })).status).toBe(401)
    expect(
      (await sandbox.http('POST', '/api/auth/refresh', { cookie: before.cookie })).status
    ).toBe(401)
    expect(Number(await sandbox.psql('SELECT count(*) FROM refresh_tokens'))).toBe(2)
    const fresh = await login(sandbox, sandbox.admin)
    expect(() => jwt.verify(fresh.access, envValue(envAfter, 'JWT_SECRET') as string)).not.toThrow()
    expect(run.outputs.verification).toBe('passed')

    // No value anywhere people read, on any command line, or left staged on the host.
    expect(rotationFiles().filter((f) => /^(stack\.env|env\.new)/.test(f))).toEqual([])
    const values = KEYS.flatMap((k) => [old[k], envValue(envAfter, k) as string])
    expect(commandLines.size).toBeGreaterThan(50)
    expect([...commandLines].some((line) => line.includes('docker stack deploy'))).toBe(true)
    expect(
      leaks(values, {
        ...readablePlaces({ sandbox, github }, run),
        argv: [...commandLines].join('\n')
      })
    ).toEqual([])
  })

  it('a fault after the swap rolls back: the backup redeployed, the old tokens valid again, CI secrets restored', async () => {
    const old = await seedCiSecrets()
    const envBefore = (await sandbox.readEnvFile()).toString('utf8')
    const before = await login(sandbox, sandbox.user)
    // The app answers its health check only with the old JWT_SECRET.
    await sandbox.setAppHealthyOnlyWithSecret(old.JWT_SECRET)
    const run = await rotate({ 'health-timeout': '8' })
    expectResult(run, 'rolled-back')
    expect(run.code).not.toBe(0)
    expect(run.stdout).toMatch(/host step "health" failed.*the host rolled back/)

    expect((await sandbox.readEnvFile()).toString('utf8')).toBe(envBefore)
    for (const scope of SCOPES)
      for (const key of KEYS) expect(github.secrets(scope).get(key)).toBe(old[key])
    const lines = journal()
    for (const step of [
      'rollback-restore',
      'rollback-deploy',
      'rollback-converge',
      'rollback-health'
    ])
      expect(lines).toMatch(new RegExp(`\\tstep-end\\t${step}\\tok`))
    expect(lines).toMatch(/\tresult\t-\trolled-back\t/)
    // The stack runs the old secrets again: the old access token is accepted.
    expect((await sandbox.http('GET', '/api/users/me', { token: before.access })).status).toBe(200)
    expect(rotationFiles().filter((f) => /^(stack\.env|env\.new)/.test(f))).toEqual([])
  })

  it('a dry run prints the swarm plan and changes nothing', async () => {
    const old = await seedCiSecrets()
    const envBefore = (await sandbox.readEnvFile()).toString('utf8')
    const containersBefore = await sandbox.runningContainers()
    const issuesBefore = github.issues.length
    const run = await rotate({ 'dry-run': 'true' })
    expectResult(run, 'dry-run')
    expect(run.stdout).toContain(
      'host: deploy: docker stack deploy --resolve-image never -c docker-stack.yml cloudbox'
    )
    expect(run.stdout).toMatch(/host: revoke: docker exec -i <running task of cloudbox_postgres>/)
    expect(run.stdout).toContain(
      'docker stack deploy with the pre-rotation values (.rotation/stack.env.old)'
    )
    expect((await sandbox.readEnvFile()).toString('utf8')).toBe(envBefore)
    expect(await sandbox.runningContainers()).toEqual(containersBefore)
    for (const scope of SCOPES)
      for (const key of KEYS) expect(github.secrets(scope).get(key)).toBe(old[key])
    expect(github.issues).toHaveLength(issuesBefore)
    expect(rotationFiles().filter((f) => /^(lock|stack\.env|journal)/.test(f))).toEqual([])
  })

  it('refuses before any change: stack not deployed, a key-taking service not in the stack, an unreadable stack file', async () => {
    const old = await seedCiSecrets()
    const envBefore = (await sandbox.readEnvFile()).toString('utf8')
    const containersBefore = await sandbox.runningContainers()
    const unchanged = async (): Promise<void> => {
      expect((await sandbox.readEnvFile()).toString('utf8')).toBe(envBefore)
      expect(await sandbox.runningContainers()).toEqual(containersBefore)
      for (const scope of SCOPES)
        for (const key of KEYS) expect(github.secrets(scope).get(key)).toBe(old[key])
      expect(rotationFiles()).not.toContain('lock')
    }

    const issuesBefore = github.issues.length
    const notDeployed = await rotate({ 'stack-name': 'cbx' })
    expectResult(notDeployed, 'failed')
    expect(notDeployed.stdout).toMatch(
      /stack "cbx" is not deployed on this Swarm \(stacks: cloudbox\): set stack-name/
    )
    await unchanged()

    // A service of the stack file that takes JWT_SECRET but was never deployed.
    const stackPath = path.join(sandbox.deployPath, sandbox.stackFile)
    const stack = readFileSync(stackPath, 'utf8')
    writeFileSync(
      stackPath,
      stack.replace(
        '\nnetworks:\n',
        '\n  mailer:\n    image: cloudbox-sandbox/base:latest\n    environment:\n      TOKEN_KEY: "${JWT_SECRET}"\n\nnetworks:\n'
      )
    )
    const missing = await rotate()
    expectResult(missing, 'failed')
    expect(missing.stdout).toMatch(
      /mailer \(environment TOKEN_KEY \(JWT_SECRET\)\) receives a rotated key in docker-stack\.yml but is not deployed in stack "cloudbox"/
    )
    await unchanged()

    writeFileSync(stackPath, 'services: [unclosed\n')
    const unreadable = await rotate()
    expectResult(unreadable, 'failed')
    expect(unreadable.stdout).toMatch(
      /the stack file .*docker-stack\.yml cannot be read as a compose file/
    )
    await unchanged()
    expect(github.issues.slice(issuesBefore).map((i) => i.title)).toEqual([
      expect.stringMatching(/: failed$/),
      expect.stringMatching(/: failed$/),
      expect.stringMatching(/: failed$/)
    ])
  })

  it('with update_config.order start-first, each rolled service starts its new task before stopping the old one', async () => {
    await sandbox.setUpdateOrder('start-first')
    const old = await seedCiSecrets()
    const before = await login(sandbox, sandbox.user)
    const run = await rotate()
    expectResult(run, 'success')
    const envAfter = (await sandbox.readEnvFile()).toString('utf8')
    for (const key of KEYS) expect(envValue(envAfter, key)).not.toBe(old[key])
    for (const service of ['backend', 'worker']) {
      const m = new RegExp(
        `\\tservice\\t${service}\\ttarget\\tstopped=(\\d+) started=(\\d+)\\n`
      ).exec(journal())
      expect(m).not.toBeNull()
      expect(Number(m?.[2])).toBeLessThan(Number(m?.[1]))
    }
    expect((await sandbox.http('GET', '/api/users/me', { token: before.access })).status).toBe(401)
    expect(run.outputs.verification).toBe('passed')
  })

  // Last: it takes the engine out of its Swarm.
  it('refuses on a host that is not a Swarm manager, before any change', async () => {
    await seedCiSecrets()
    const envBefore = (await sandbox.readEnvFile()).toString('utf8')
    expect((await sandbox.docker(['swarm', 'leave', '--force'])).code).toBe(0)
    const run = await rotate()
    expectResult(run, 'failed')
    expect(run.stdout).toMatch(/the host is not part of a Swarm \(docker info: Swarm inactive\)/)
    expect((await sandbox.readEnvFile()).toString('utf8')).toBe(envBefore)
    expect(rotationFiles()).not.toContain('lock')
  })
})

// The launch of the host sequence when its answer is lost, and who holds the
// lock: the SSH connection cut from the server side right after the sequence
// started, a lock removed before launch, a second recover while one runs.
import { describe, expect, it } from '@jest/globals'
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { envValue } from '../../src/host/dotenv.js'
import { startFaultySshd, type SshFault } from '../../sandbox/ssh-faults.js'
import type { ActionRun } from '../../sandbox/run-action.js'
import {
  KEYS,
  SCOPES,
  ciSecret,
  expectResult,
  journalOf,
  lastIssue,
  seedCiSecrets,
  useBed,
  type Bed
} from './helpers.js'

let bed: Bed
useBed((b) => (bed = b))

const rotationDir = (): string => path.join(bed.sandbox.deployPath, '.rotation')

async function waitFor(what: string, check: () => boolean, timeoutMs = 90000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

/**
 * One rotation whose SSH goes through an sshd that plays `fault` on the
 * launch, with `setEnv` in the sessions' environment.
 */
async function rotateThrough(
  fault: SshFault | null,
  setEnv: Record<string, string> = {}
): Promise<{ run: ActionRun; answer: string }> {
  const sshd = await startFaultySshd(bed.sandbox, fault, setEnv)
  try {
    const run = await bed.rotate({
      'admin-credentials': '',
      'user-credentials': '',
      'ssh-port': String(sshd.port),
      'ssh-known-hosts': sshd.knownHosts
    })
    if (fault !== null) expect(sshd.fired()).toBe(true)
    return { run, answer: sshd.withheldAnswer() }
  } finally {
    await sshd.stop()
  }
}

/** The `run=` of the journal's run-start. */
function journalRunId(): string | undefined {
  return /\trun-start\t[^\n]*\brun=(\S+)/.exec(journalOf(bed.sandbox))?.[1]
}

/** A finished journal of an earlier run, as a host that rotated before has. */
function earlierJournal(): string {
  const at = Date.now() - 86400 * 1000
  const text = `${at}\trun-start\t-\timmediate\tpid=1 run=earlier-run\n${at + 9}\tresult\t-\tsuccess\t\n`
  mkdirSync(rotationDir(), { recursive: true })
  writeFileSync(path.join(rotationDir(), 'journal'), text)
  return text
}

describe('a lost answer to the launch', () => {
  it('connection cut by the server right after the sequence started: the run follows it, CI and production agree', async () => {
    const old = await seedCiSecrets(bed)
    earlierJournal()
    const { run, answer } = await rotateThrough('cut-after-launch')
    // The host did start the sequence and answered; the answer never arrived.
    expect(answer).toMatch(/^launched=setsid$/m)
    expectResult(run, 'success')
    expect(run.code).toBe(0)
    const env = (await bed.sandbox.readEnvFile()).toString('utf8')
    for (const key of KEYS) {
      const now = envValue(env, key) as string
      expect(now).not.toBe(old[key])
      for (const scope of SCOPES) expect(ciSecret(bed, scope, key)).toBe(now)
    }
    expect(journalOf(bed.sandbox)).toMatch(/\tresult\t-\tsuccess\t/)
    // This run's journal, not the earlier one replayed.
    expect(journalRunId()).not.toBe('earlier-run')
    expect(journalRunId()).toBeDefined()
    expect(run.stdout).not.toMatch(/written back|untouched|rm -r/)
    expect(existsSync(path.join(rotationDir(), 'lock'))).toBe(false)
    expect((await bed.sandbox.http('GET', '/api/health/ping')).status).toBe(200)
  })

  it('the lock vanished before launch: not started, fenced, CI compensated, production untouched', async () => {
    const old = await seedCiSecrets(bed)
    const envBefore = await bed.sandbox.readEnvFile()
    const journalBefore = earlierJournal()
    const { run } = await rotateThrough('remove-lock-before-launch')
    expectResult(run, 'failed')
    expect(run.code).not.toBe(0)
    expect(run.stdout).toMatch(/did not start and can no longer start/)
    expect(run.stdout).not.toMatch(/UNKNOWN|rm -r/)
    // Nothing on the host changed; the previous run's journal is still there.
    expect((await bed.sandbox.readEnvFile()).equals(envBefore)).toBe(true)
    expect(journalOf(bed.sandbox)).toBe(journalBefore)
    expect(existsSync(path.join(rotationDir(), 'lock'))).toBe(false)
    // CI was written, then written back: it matches production again.
    for (const scope of SCOPES)
      for (const key of KEYS) expect(ciSecret(bed, scope, key)).toBe(old[key])
    const issue = lastIssue(bed)
    expect(issue.title).toMatch(/: failed$/)
    expect(issue.body).toMatch(/production untouched/)
    expect(issue.body).not.toMatch(/DISAGREE|unknown/i)

    // The next run works.
    expectResult(await bed.rotate({ 'admin-credentials': '', 'user-credentials': '' }), 'success')
  })
})

describe('the lock tells whether its holder lives', () => {
  it('a second recover while the first one runs is refused; the first recovers', async () => {
    // A run that died before its backup: an interrupted journal, a dead pid.
    const now = Date.now()
    mkdirSync(path.join(rotationDir(), 'lock'), { recursive: true, mode: 0o700 })
    writeFileSync(
      path.join(rotationDir(), 'journal'),
      `${now}\trun-start\t-\timmediate\tpid=2147483646 run=dead\n${now + 5}\tstep-start\tbackup\t-\t\n`
    )
    writeFileSync(path.join(rotationDir(), 'lock', 'holder'), 'run=dead\n')
    writeFileSync(path.join(rotationDir(), 'lock', 'pid'), '2147483646\n')
    await bed.sandbox.setComposeFaults([{ match: '^up', action: 'slow', seconds: 6 }])

    const first = bed.rotate({ recover: 'true' })
    const pidFile = path.join(rotationDir(), 'lock', 'pid')
    await waitFor('the first recover to run', () => {
      try {
        return readFileSync(pidFile, 'utf8').trim() !== '2147483646'
      } catch {
        return false
      }
    })
    const envBefore = await bed.sandbox.readEnvFile()
    const second = await bed.rotate({ recover: 'true' })
    expectResult(second, 'failed')
    expect(second.stdout).toMatch(
      /nothing to recover: the last rotation journal on the host is still running/
    )
    // The running recovery keeps its lock and its journal.
    expect((await bed.sandbox.readEnvFile()).equals(envBefore)).toBe(true)
    expect(existsSync(pidFile)).toBe(true)
    expect(readdirInterrupted()).toEqual(['lock.interrupted'])

    const recovered = await first
    expectResult(recovered, 'recovered')
    expect(journalOf(bed.sandbox)).toMatch(/\tresult\t-\trecovered\t/)
  })
})

describe("the detached sequence sees the session's environment", () => {
  it('COMPOSE_* from the login environment reach the compose calls of the detached run', async () => {
    await seedCiSecrets(bed)
    const seen = path.join(bed.sandbox.workDir, 'compose-env-seen')
    await bed.sandbox.setComposeFaults([
      {
        match: '^up',
        action: 'run-then-exec',
        command: `printf '%s %s\\n' "$COMPOSE_PROJECT_NAME" "$COMPOSE_PROFILES" >>${seen}`
      }
    ])
    const project = path.basename(bed.sandbox.deployPath)
    const { run } = await rotateThrough(null, {
      COMPOSE_PROJECT_NAME: project,
      COMPOSE_PROFILES: 'carried-profile'
    })
    expectResult(run, 'success')
    // `up` runs only in the detached sequence: it saw the session's values.
    expect(readFileSync(seen, 'utf8')).toMatch(new RegExp(`^${project} carried-profile$`, 'm'))
  })

  it("a login environment's COMPOSE_PROJECT_NAME naming a project that does not run is refused", async () => {
    await seedCiSecrets(bed)
    const envBefore = await bed.sandbox.readEnvFile()
    const writesBefore = bed.github.secretWrites.length
    const { run } = await rotateThrough(null, { COMPOSE_PROJECT_NAME: 'not_this_project' })
    expectResult(run, 'failed')
    expect(run.stdout).toMatch(/has no container on the host/)
    expect(run.stdout).toMatch(/COMPOSE_PROJECT_NAME/)
    expect(bed.github.secretWrites.length).toBe(writesBefore)
    expect((await bed.sandbox.readEnvFile()).equals(envBefore)).toBe(true)
  })
})

/** The locks recover took over (one: the dead run's, never the live one's). */
function readdirInterrupted(): string[] {
  return readdirSync(rotationDir())
    .filter((name) => name.startsWith('lock.interrupted.'))
    .map(() => 'lock.interrupted')
}

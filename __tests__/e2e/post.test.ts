// The post step (dist/post.js) after a cancelled or killed main step, run the
// way the runner does: the bundled main with GITHUB_STATE, cancelled with
// SIGINT, SIGTERM 7.5 s later and SIGKILL 2.5 s after that, then the bundled
// post entry with the STATE_* variables the runner passes from that file.
// Each time: exactly one issue for the run, holding the true end state, and
// every CI secret equal to what production runs on.
import { describe, expect, it } from '@jest/globals'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { envValue } from '../../src/host/dotenv.js'
import { runAction, sandboxInputs, type ActionRun } from '../../sandbox/run-action.js'
import {
  ciSecret,
  expectResult,
  journalOf,
  KEYS,
  leaks,
  readablePlaces,
  SCOPES,
  seedCiSecrets,
  useBed,
  type Bed
} from './helpers.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')

let bed: Bed
useBed((b) => (bed = b))

const QUIET = { 'admin-credentials': '', 'user-credentials': '' }

/** The main step, cancelled as the runner cancels it when `pattern` shows in its log. */
async function cancelledMain(
  runId: string,
  pattern: RegExp,
  options: { onStdout?: (text: string) => void; overrides?: Record<string, string> } = {}
): Promise<ActionRun> {
  return bed.rotate(options.overrides ?? QUIET, {
    env: { GITHUB_RUN_ID: runId },
    cancelWhen: { pattern },
    onStdout: options.onStdout
  })
}

/** The post step, with the main step's saved state as STATE_* variables. */
async function post(
  main: ActionRun,
  runId: string,
  overrides: Record<string, string> = QUIET
): Promise<ActionRun> {
  const state: Record<string, string> = {}
  for (const [name, value] of Object.entries(main.state)) state[`STATE_${name}`] = value
  return runAction(
    sandboxInputs(bed.sandbox, { 'compose-command': bed.sandbox.composeWrapper, ...overrides }),
    {
      githubUrl: bed.github.url,
      entry: path.join(ROOT, 'dist', 'post.js'),
      env: { GITHUB_RUN_ID: runId, ...state }
    }
  )
}

async function hostValues(): Promise<Record<string, string>> {
  const env = (await bed.sandbox.readEnvFile()).toString('utf8')
  return Object.fromEntries(KEYS.map((k) => [k, envValue(env, k) as string]))
}

/** Every CI secret holds what production's .env holds. */
async function expectCiMatchesHost(): Promise<Record<string, string>> {
  const host = await hostValues()
  for (const scope of SCOPES) {
    for (const key of KEYS)
      expect(`${scope}/${key}=${ciSecret(bed, scope, key)}`).toBe(`${scope}/${key}=${host[key]}`)
  }
  return host
}

function log(run: ActionRun): string {
  return `exit ${run.code} signal ${run.signal}\n--- stdout\n${run.stdout.slice(-5000)}\n--- stderr\n${run.stderr.slice(-1500)}`
}

const newRunId = (): string => String(20000 + Math.floor(Math.random() * 70000))

describe('post step after a cancelled main step', () => {
  it('cancelled while writing CI secrets, killed while writing them back: post fences the host, restores CI, opens the one issue', async () => {
    const before = await seedCiSecrets(bed)
    const issuesBefore = bed.github.issues.length
    const runId = newRunId()
    // Every GitHub answer takes 4 s once the CI phase starts: the main step
    // cannot finish its compensation before the SIGKILL.
    let slowed = false
    const main = await cancelledMain(runId, /: JWT(_REFRESH)?_SECRET updated/, {
      onStdout: (text) => {
        if (!slowed && /3\. CI secrets/.test(text)) {
          slowed = true
          bed.github.inject({ latencyMs: 4000 })
        }
      }
    })
    expect(main.signalsSent.map((s) => s.signal)).toEqual(['SIGINT', 'SIGTERM', 'SIGKILL'])
    expect(main.signal).toBe('SIGKILL')
    expect(bed.github.issues.length).toBe(issuesBefore)
    const saved = JSON.parse(main.state.rotation) as {
      phase: string
      reported: boolean
      ciPlanned: unknown[]
    }
    expect(saved.phase).toBe('ci-writing')
    expect(saved.reported).toBe(false)
    expect(saved.ciPlanned).toHaveLength(SCOPES.length * KEYS.length)
    // No value in the saved state.
    expect(leaks(Object.values(before), { state: main.state.rotation })).toEqual([])

    bed.github.clearFaults()
    const finished = await post(main, runId)
    expect({ code: finished.code, log: finished.code === 0 ? '' : log(finished) }).toEqual({
      code: 1, // the run failed (cancelled): the post step says so
      log: log(finished)
    })
    expect(finished.stdout).toMatch(/Old values re-read from .*\.env \(its SHA-256/)
    // CI back on the old values, which production never left.
    const host = await expectCiMatchesHost()
    expect(host).toEqual(before)
    expect(existsSync(path.join(bed.sandbox.deployPath, '.rotation', 'lock'))).toBe(false)
    expect(bed.github.issues.length).toBe(issuesBefore + 1)
    const issue = bed.github.issues.at(-1) as { title: string; body: string }
    expect(issue.title).toMatch(/: failed$/)
    expect(issue.body).toMatch(/production untouched, still on the old secrets/)
    expect(issue.body).toMatch(/CI secrets are back on the old values/)
    expect(finished.summary).toMatch(/failed/)
    const values = [...Object.values(before)]
    expect(leaks(values, readablePlaces(bed, finished))).toEqual([])
  })

  it('cancelled during the host sequence, which then rolls back: post follows it, restores CI from the backup, completes the one issue', async () => {
    const before = await seedCiSecrets(bed)
    const issuesBefore = bed.github.issues.length
    const writesBefore = bed.github.secretWrites.length
    const runId = newRunId()
    // stop takes 3 s (the cancel lands there; the main step stops following at
    // the next journal line and reports), then the first `up -d` fails: rollback.
    await bed.sandbox.setComposeFaults([
      { match: '^stop', action: 'slow', seconds: 3, times: 1 },
      { match: '^up -d', action: 'fail', times: 1 }
    ])
    const main = await cancelledMain(runId, /▶ stop/)
    expectResult(main, 'failed')
    expect(main.signalsSent[0]?.signal).toBe('SIGINT')
    // Its provisional issue says the host goes on by itself.
    expect(bed.github.issues.length).toBe(issuesBefore + 1)
    expect((bed.github.issues.at(-1) as { body: string }).body).toMatch(/goes on by itself/)
    const saved = JSON.parse(main.state.rotation) as { reported: boolean; final: boolean }
    expect(saved).toMatchObject({ reported: true, final: false })
    // The CI secrets hold the new values the host is rolling back from.
    expect(ciSecret(bed, 'repository', 'JWT_SECRET')).not.toBe(before.JWT_SECRET)

    const finished = await post(main, runId)
    expect(finished.code).toBe(1) // rolled back: the step fails, as the main step would have
    expect(finished.stdout).toMatch(
      /Old values re-read from .*\.env\.backup\.\d{8}T\d{6}Z \(its SHA-256/
    )
    expect(journalOf(bed.sandbox)).toMatch(/\tresult\t-\trolled-back\t/)
    const host = await expectCiMatchesHost()
    expect(host).toEqual(before)
    // The same issue, now final; no second one.
    expect(bed.github.issues.length).toBe(issuesBefore + 1)
    const issue = bed.github.issues.at(-1) as { title: string; body: string; updates?: number }
    expect(issue.updates).toBe(1)
    expect(issue.title).toMatch(/: rolled-back$/)
    expect(issue.body).toMatch(/production is back on the old secrets/)
    expect(issue.body).not.toMatch(/goes on by itself/)
    expect(bed.github.secretWrites.length).toBeGreaterThan(writesBefore)
    expect(leaks(Object.values(before), readablePlaces(bed, finished))).toEqual([])
  })

  it('cancelled during a long host step, which succeeds: the main step stops following and reports provisionally; post completes the same issue', async () => {
    await seedCiSecrets(bed)
    const issuesBefore = bed.github.issues.length
    const runId = newRunId()
    // stop takes 14 s: no journal line reaches the main step's follower before its SIGKILL.
    await bed.sandbox.setComposeFaults([{ match: '^stop', action: 'slow', seconds: 14, times: 1 }])
    const main = await cancelledMain(runId, /▶ stop/)
    // It lets go of the follower at once (it does not wait for the next journal line).
    expect(main.signalsSent.map((s) => s.signal)).toEqual(['SIGINT'])
    expectResult(main, 'failed')
    const saved = JSON.parse(main.state.rotation) as {
      phase: string
      reported: boolean
      final: boolean
    }
    expect(saved).toMatchObject({ phase: 'host-launched', reported: true, final: false })
    expect(bed.github.issues.length).toBe(issuesBefore + 1)
    // The host is still in its stop step.
    expect(journalOf(bed.sandbox)).not.toMatch(/\tresult\t/)

    const finished = await post(main, runId)
    expect({ code: finished.code, log: finished.code === 0 ? '' : log(finished) }).toEqual({
      code: 0,
      log: ''
    })
    const host = await expectCiMatchesHost()
    expect(journalOf(bed.sandbox)).toMatch(/\tresult\t-\tsuccess\t/)
    expect(bed.github.issues.length).toBe(issuesBefore + 1)
    const issue = bed.github.issues.at(-1) as { title: string; updates?: number }
    expect(issue.title).toMatch(/: success$/)
    expect(issue.updates).toBe(1)
    expect(leaks(Object.values(host), readablePlaces(bed, finished))).toEqual([])
  })

  it('cancelled during a host sequence that rolls back, with create-missing: post deletes the secrets the run created and restores the others', async () => {
    const before = await seedCiSecrets(bed)
    // The repository held none: this run creates them there (first set-up).
    bed.github.secrets('repository').clear()
    const runId = newRunId()
    await bed.sandbox.setComposeFaults([
      { match: '^stop', action: 'slow', seconds: 3, times: 1 },
      { match: '^up -d', action: 'fail', times: 1 }
    ])
    const main = await cancelledMain(runId, /▶ stop/, {
      overrides: { ...QUIET, 'create-missing': 'true' }
    })
    expectResult(main, 'failed')
    const saved = JSON.parse(main.state.rotation) as { ciCreated: unknown[] }
    expect(saved.ciCreated).toEqual(KEYS.map((name) => ({ scope: 'repository', name })))
    expect(ciSecret(bed, 'repository', 'JWT_SECRET')).toBeDefined()

    const finished = await post(main, runId, { ...QUIET, 'create-missing': 'true' })
    expect(finished.code).toBe(1) // rolled back
    expect(journalOf(bed.sandbox)).toMatch(/\tresult\t-\trolled-back\t/)
    for (const key of KEYS) {
      expect(ciSecret(bed, 'repository', key)).toBeUndefined()
      for (const scope of SCOPES.filter((s) => s !== 'repository'))
        expect(`${scope}/${key}=${ciSecret(bed, scope, key)}`).toBe(
          `${scope}/${key}=${before[key]}`
        )
    }
    expect(finished.stdout).toMatch(/repository: JWT_SECRET deleted \(this run had created it\)/)
    const issue = bed.github.issues.at(-1) as { body: string }
    expect(issue.body).toMatch(
      /CI secrets this run had created deleted again: repository\/JWT_SECRET/
    )
    expect(leaks(Object.values(before), readablePlaces(bed, finished))).toEqual([])
  })

  it('an issue the saved state does not know (answer lost at the kill): post finds it and completes it, no second issue', async () => {
    await seedCiSecrets(bed)
    const issuesBefore = bed.github.issues.length
    const runId = newRunId()
    await bed.sandbox.setComposeFaults([{ match: '^stop', action: 'slow', seconds: 6, times: 1 }])
    const main = await cancelledMain(runId, /▶ stop/)
    expectResult(main, 'failed')
    expect(bed.github.issues.length).toBe(issuesBefore + 1)
    // As if the main step had been killed before GitHub's answer came back.
    const saved = JSON.parse(main.state.rotation) as Record<string, unknown>
    delete saved.issue
    saved.reported = false
    const finished = await post({ ...main, state: { rotation: JSON.stringify(saved) } }, runId)
    expect({ code: finished.code, log: finished.code === 0 ? '' : log(finished) }).toEqual({
      code: 0,
      log: ''
    })
    expect(finished.stdout).toMatch(/Found this run's issue #\d+/)
    expect(bed.github.issues.length).toBe(issuesBefore + 1)
    const issue = bed.github.issues.at(-1) as { title: string; updates?: number }
    expect(issue.title).toMatch(/: success$/)
    expect(issue.updates).toBe(1)
    await expectCiMatchesHost()
  })

  it('killed outright during the host sequence, which succeeds: post follows it, sets the variable, opens the one issue', async () => {
    await seedCiSecrets(bed)
    const issuesBefore = bed.github.issues.length
    const runId = newRunId()
    await bed.sandbox.setComposeFaults([{ match: '^stop', action: 'slow', seconds: 4, times: 1 }])
    const main = await bed.rotate(QUIET, {
      env: { GITHUB_RUN_ID: runId },
      signalWhen: { pattern: /▶ stop/, signal: 'SIGKILL' }
    })
    expect(main.signal).toBe('SIGKILL')
    expect(bed.github.issues.length).toBe(issuesBefore)
    const saved = JSON.parse(main.state.rotation) as { phase: string; rotatedAt: string }
    expect(saved.phase).toBe('host-launched')

    const finished = await post(main, runId)
    expect({ code: finished.code }).toEqual({ code: 0 })
    const host = await expectCiMatchesHost()
    expect(journalOf(bed.sandbox)).toMatch(/\tresult\t-\tsuccess\t/)
    expect(bed.github.variables.get('JWT_SECRETS_ROTATED_AT')).toBe(saved.rotatedAt)
    expect(bed.github.issues.length).toBe(issuesBefore + 1)
    const issue = bed.github.issues.at(-1) as { title: string; body: string }
    expect(issue.title).toMatch(/: success$/)
    expect(issue.body).toMatch(/- \[x\] Update secret in any CI\/CD pipelines/)
    expect(issue.body).toMatch(/- \[ \] Verify admin can login/)
    expect(leaks(Object.values(host), readablePlaces(bed, finished))).toEqual([])
  })

  it('cancelled during verification: the main step still reports, and post does nothing', async () => {
    await seedCiSecrets(bed)
    const issuesBefore = bed.github.issues.length
    const runId = newRunId()
    const main = await cancelledMain(runId, /6\. Verify/)
    expectResult(main, 'success')
    const saved = JSON.parse(main.state.rotation) as { reported: boolean; final: boolean }
    expect(saved).toMatchObject({ reported: true, final: true })
    const writes = bed.github.secretWrites.length
    const finished = await post(main, runId)
    expect(finished.code).toBe(0)
    expect(finished.stdout).toMatch(/the main step finished its report: nothing to do/)
    expect(bed.github.secretWrites.length).toBe(writes)
    expect(bed.github.issues.length).toBe(issuesBefore + 1)
    await expectCiMatchesHost()
  })

  it('cannot reach the host: post writes no CI secret, fails with what it could not do and the last known state', async () => {
    await seedCiSecrets(bed)
    const writes = bed.github.secretWrites.length
    const issuesBefore = bed.github.issues.length
    const state = {
      v: 1,
      runId: `${newRunId()}-1-abcdef`,
      rotatedAt: new Date().toISOString(),
      phase: 'host-launched',
      dryRun: false,
      envSha256: '0'.repeat(64),
      ciPlanned: [{ scope: 'repository', name: 'JWT_SECRET' }],
      ciWritten: [{ scope: 'repository', name: 'JWT_SECRET' }],
      ciRestored: [],
      reported: false,
      final: false
    }
    const finished = await runAction(
      sandboxInputs(bed.sandbox, { ...QUIET, 'ssh-port': '1', 'ssh-timeout': '5' }),
      {
        githubUrl: bed.github.url,
        entry: path.join(ROOT, 'dist', 'post.js'),
        env: { STATE_rotation: JSON.stringify(state) }
      }
    )
    expect(finished.code).toBe(1)
    const error = finished.stdout.split('\n').find((l) => l.startsWith('::error::')) ?? ''
    expect(error).toMatch(/could not learn the host's end state: could not connect over SSH/)
    expect(error).toMatch(
      /last known state \(phase host-launched\): the host sequence was running; its end is unknown/
    )
    expect(error).toMatch(/CI secrets written with new values: repository\/JWT_SECRET/)
    expect(bed.github.secretWrites.length).toBe(writes)
    // It still reports what it knows: unknown.
    expect(bed.github.issues.length).toBe(issuesBefore + 1)
    expect((bed.github.issues.at(-1) as { body: string }).body).toMatch(/UNKNOWN/)
    // Every answer the stand-in gave this suite (issue list and PATCH included) fits GitHub's OpenAPI.
    expect(bed.github.responseProblems).toEqual([])
  })
})

// What the main step saves for the post step, and how the post step reads the
// host's end: pure parts of post/state.ts and post.ts.
import { describe, expect, it } from '@jest/globals'
import type { FollowResult } from '../../src/host/sequence.js'
import { hostEnvAfter, lastKnown } from '../../src/post/outcome.js'
import type { HostEnd } from '../../src/post/host.js'
import {
  advance,
  readRunState,
  reportIsFinal,
  StateRecorder,
  STATE_NAME,
  type RunState
} from '../../src/post/state.js'

const repo = { scope: 'repository', name: 'JWT_SECRET' }
const prod = { scope: 'environment:production', name: 'JWT_SECRET' }

function fresh(): { recorder: StateRecorder; saved: Array<[string, string]> } {
  const saved: Array<[string, string]> = []
  const recorder = new StateRecorder(
    { runId: '42-1-abcdef', rotatedAt: '2027-01-15T03:00:00.000Z', dryRun: false },
    (name, value) => saved.push([name, value])
  )
  return { recorder, saved }
}

describe('StateRecorder', () => {
  it('saves at once, and again on every change, under one name', () => {
    const { recorder, saved } = fresh()
    expect(saved).toHaveLength(1)
    recorder.record({ kind: 'preflight-done', envSha256: 'ab'.repeat(32) })
    recorder.record({ kind: 'ci-writing', planned: [repo, prod], created: [] })
    recorder.record({ kind: 'ci-written', secret: repo })
    expect(saved).toHaveLength(4)
    expect(saved.every(([name]) => name === STATE_NAME)).toBe(true)
    const last = readRunState(saved[3][1]) as RunState
    expect(last).toMatchObject({ phase: 'ci-writing', ciPlanned: [repo, prod], ciWritten: [repo] })
  })

  it('marks the report final only when the host end was seen or never in play', () => {
    const { recorder } = fresh()
    recorder.record({ kind: 'host-launching', backupName: '.env.backup.20270115T030000Z' })
    recorder.record({ kind: 'host-launched' })
    recorder.reported()
    expect(recorder.current).toMatchObject({ reported: true, final: false })
    recorder.record({ kind: 'host-done', hostResult: 'success' })
    recorder.reported()
    expect(recorder.current).toMatchObject({ reported: true, final: true })
  })

  it('records the issue as soon as it is opened', () => {
    const { recorder, saved } = fresh()
    recorder.issueOpened({ number: 7, url: 'https://github.example/acme/cloudbox/issues/7' })
    expect(readRunState(saved.at(-1)?.[1] ?? '')?.issue?.number).toBe(7)
  })
})

describe('advance', () => {
  const base = fresh().recorder.current

  it('keeps a follower that saw no end in host-launched', () => {
    const launched = advance(base, { kind: 'host-launched' })
    expect(advance(launched, { kind: 'host-done' }).phase).toBe('host-launched')
    expect(advance(launched, { kind: 'host-done', hostResult: 'rolled-back' })).toMatchObject({
      phase: 'host-done',
      hostResult: 'rolled-back'
    })
  })

  it('lists a secret once however often it is reported', () => {
    let s = advance(base, { kind: 'ci-written', secret: repo })
    s = advance(s, { kind: 'ci-written', secret: { ...repo } })
    s = advance(s, { kind: 'ci-restored', secret: repo })
    s = advance(s, { kind: 'ci-restored', secret: repo })
    expect(s.ciWritten).toEqual([repo])
    expect(s.ciRestored).toEqual([repo])
  })

  it('reportIsFinal: false only between launch and the end of the host sequence', () => {
    for (const phase of [
      'started',
      'preflight-done',
      'ci-writing',
      'host-done',
      'verifying'
    ] as const)
      expect(reportIsFinal({ ...base, phase })).toBe(true)
    for (const phase of ['host-launching', 'host-launched'] as const)
      expect(reportIsFinal({ ...base, phase })).toBe(false)
  })
})

describe('readRunState', () => {
  it('is undefined without state, and refuses what is not this version’s', () => {
    expect(readRunState('')).toBeUndefined()
    expect(() => readRunState('{"v":2}')).toThrow('not this action version')
    expect(() => readRunState('not json')).toThrow()
  })
})

describe('hostEnvAfter', () => {
  const followed = (summary: Partial<FollowResult>): HostEnd => ({
    kind: 'followed',
    summary: { steps: [], notes: [], terminal: true, ...summary }
  })

  it.each([
    ['success', 'new'],
    ['recovered', 'new'],
    ['rolled-back', 'old'],
    ['aborted', 'old'],
    ['recover-failed', 'unknown']
  ])('%s → %s', (result, env) => {
    expect(hostEnvAfter(followed({ result }))).toBe(env)
  })

  it('never guesses: an unseen end or an unreachable host is unknown; an unstarted run is old', () => {
    expect(hostEnvAfter(followed({ terminal: false }))).toBe('unknown')
    expect(hostEnvAfter({ kind: 'unknown', why: 'x' })).toBe('unknown')
    expect(hostEnvAfter({ kind: 'not-started' })).toBe('old')
  })

  it('rollback-failed: old unless restoring the backup failed', () => {
    expect(hostEnvAfter(followed({ result: 'rollback-failed' }))).toBe('old')
    expect(
      hostEnvAfter(
        followed({
          result: 'rollback-failed',
          steps: [{ name: 'rollback-restore', status: 'fail', startedAt: 0, infos: [] }]
        })
      )
    ).toBe('unknown')
  })
})

describe('lastKnown', () => {
  it('names the phase, the host and each CI secret, with the unconfirmed ones', () => {
    const s: RunState = {
      ...fresh().recorder.current,
      phase: 'ci-writing',
      ciPlanned: [repo, prod],
      ciWritten: [repo]
    }
    expect(lastKnown(s)).toBe(
      'last known state (phase ci-writing): the host was not changed (this run holds its lock); CI secrets written with new values: repository/JWT_SECRET (unknown for environment:production/JWT_SECRET)'
    )
  })
})

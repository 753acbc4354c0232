// What the main step leaves for the post step (core.saveState): how far the
// run got, what it wrote where, and whether its report is final. Names,
// scopes, paths, phases and a SHA-256 of the pre-rotation .env only: never a
// secret value.
//
// The runner reads the GITHUB_STATE file after the main step, however it
// ended (SIGKILL included), and passes the last value of each name to the post
// step as STATE_<name>. Every change is saved at once, so a kill at any point
// leaves the state of that point.
import * as core from '@actions/core'
import type { SecretRef } from '../outcome.js'

export const STATE_NAME = 'rotation'

export type Phase =
  /** Config read; nothing contacted. */
  | 'started'
  /** Preflight passed: the host lock is this run's. */
  | 'preflight-done'
  /** CI secrets are being written (planned lists every one that may hold a new value). */
  | 'ci-writing'
  /** Staging and launching the host sequence: whether it started is not known yet. */
  | 'host-launching'
  /** The host sequence runs on its own. */
  | 'host-launched'
  /** The host sequence ended (hostResult). */
  | 'host-done'
  | 'verifying'

export interface RunState {
  v: 1
  runId: string
  rotatedAt: string
  phase: Phase
  dryRun: boolean
  /** SHA-256 of the .env preflight read: how the post step recognises the old values. */
  envSha256?: string
  /** CI secrets that may hold a new value (written or being written). */
  ciPlanned: SecretRef[]
  /** Of those, the ones this run creates (create-missing): undone by deleting them. */
  ciCreated?: SecretRef[]
  /** CI secrets confirmed written with a new value. */
  ciWritten: SecretRef[]
  /** CI secrets confirmed written back to the old value (or deleted, when this run created them). */
  ciRestored: SecretRef[]
  /** .env backup this run asked the host for (relative to deploy-path). */
  backupName?: string
  hostResult?: string
  /** The report issue, once opened. */
  issue?: { number: number; url: string }
  /** The main step wrote its report (issue, summary, outputs). */
  reported: boolean
  /** Its report says the true end state (false: the host's end was not seen). */
  final: boolean
}

export type Progress =
  | { kind: 'preflight-done'; envSha256: string }
  | { kind: 'ci-writing'; planned: SecretRef[]; created: SecretRef[] }
  | { kind: 'ci-written'; secret: SecretRef }
  | { kind: 'ci-restored'; secret: SecretRef }
  | { kind: 'host-launching'; backupName: string }
  | { kind: 'host-launched' }
  | { kind: 'host-done'; hostResult?: string }
  | { kind: 'verifying' }

const same = (a: SecretRef, b: SecretRef): boolean => a.scope === b.scope && a.name === b.name

/** Applies one progress event (pure). */
export function advance(state: RunState, p: Progress): RunState {
  const next: RunState = { ...state }
  switch (p.kind) {
    case 'preflight-done':
      next.phase = 'preflight-done'
      next.envSha256 = p.envSha256
      break
    case 'ci-writing':
      next.phase = 'ci-writing'
      next.ciPlanned = [...p.planned]
      next.ciCreated = [...p.created]
      break
    case 'ci-written':
      if (!next.ciWritten.some((s) => same(s, p.secret)))
        next.ciWritten = [...next.ciWritten, p.secret]
      break
    case 'ci-restored':
      if (!next.ciRestored.some((s) => same(s, p.secret)))
        next.ciRestored = [...next.ciRestored, p.secret]
      break
    case 'host-launching':
      next.phase = 'host-launching'
      next.backupName = p.backupName
      break
    case 'host-launched':
      next.phase = 'host-launched'
      break
    case 'host-done':
      // A follower that stopped without a result saw no end: still launched.
      if (p.hostResult !== undefined) {
        next.phase = 'host-done'
        next.hostResult = p.hostResult
      }
      break
    case 'verifying':
      next.phase = 'verifying'
      break
  }
  return next
}

/**
 * Whether a report written now says the true end state: not when the host
 * sequence was (maybe) started and its end was never seen.
 */
export function reportIsFinal(state: RunState): boolean {
  return state.phase !== 'host-launching' && state.phase !== 'host-launched'
}

/** Holds the run state and saves every change with core.saveState. */
export class StateRecorder {
  private state: RunState

  constructor(
    init: { runId: string; rotatedAt: string; dryRun: boolean },
    private readonly save: (name: string, value: string) => void = core.saveState
  ) {
    this.state = {
      v: 1,
      ...init,
      phase: 'started',
      ciPlanned: [],
      ciWritten: [],
      ciRestored: [],
      reported: false,
      final: false
    }
    this.flush()
  }

  get current(): RunState {
    return this.state
  }

  private flush(): void {
    this.save(STATE_NAME, JSON.stringify(this.state))
  }

  record = (p: Progress): void => {
    this.state = advance(this.state, p)
    this.flush()
  }

  issueOpened(issue: { number: number; url: string }): void {
    this.state = { ...this.state, issue }
    this.flush()
  }

  reported(): void {
    this.state = { ...this.state, reported: true, final: reportIsFinal(this.state) }
    this.flush()
  }
}

/** The state the runner passed as STATE_rotation; undefined when there is none. Throws on garbage. */
export function readRunState(raw: string): RunState | undefined {
  if (raw.trim() === '') return undefined
  const parsed = JSON.parse(raw) as RunState
  if (parsed?.v !== 1 || typeof parsed.runId !== 'string' || typeof parsed.phase !== 'string') {
    throw new Error('the saved state is not this action version’s')
  }
  return parsed
}

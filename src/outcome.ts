// What a run did, as the report renders it. Holds names, scopes, times and
// verdicts, never a secret value.
import type { Mode, Restart } from './config.js'
import type { ServiceTiming } from './host/service-times.js'

export type Result = 'success' | 'rolled-back' | 'failed' | 'dry-run' | 'recovered'

export interface SecretRef {
  /** 'repository' or 'environment:NAME' */
  scope: string
  name: string
}

export interface HostStep {
  name: string
  status: 'ok' | 'fail' | 'running'
  seconds?: number
  detail?: string
}

export interface LoginCheck {
  account: 'admin' | 'user'
  /** verified: login and the check URL answered 200 with the new token. */
  status: 'verified' | 'skipped' | 'failed'
  reason?: string
}

export interface LogScanResult {
  status:
    'clean' | 'expected-only' | 'config-errors' | 'unexpected-jwt-errors' | 'skipped' | 'failed'
  total: number
  expected: number
  configErrors: number
  /** JWT errors that are neither old tokens rejected nor configuration errors. */
  unexpected?: number
  samples: string[]
  since?: string
  reason?: string
}

export interface Outcome {
  result: Result
  /** ISO-8601 UTC time the run (rotation) began. */
  rotatedAt: string
  mode: Mode
  recover: boolean
  dryRun: boolean
  reason: string
  repository: string
  triggeredBy: string
  runUrl?: string
  host: string
  /** Set when preflight refused: nothing was changed anywhere. */
  refused?: string[]
  /** What failed, in one sentence (absent on success). */
  failure?: string
  /** Everything changed so far, in words (empty: nothing changed). */
  changed: string[]
  /** The state things are in now, in words. */
  stateNow: string
  /** Loud warning when CI secrets and production may disagree, with what to do. */
  mismatch?: string
  hostResult?: string
  hostSteps: HostStep[]
  downtimeSeconds?: number
  restart?: Restart
  /** Services that receive a rotated key, and how (from compose config). */
  restartTargets?: Array<{ service: string; why: string }>
  /** Per service recreated by the host sequence: when it stopped and started. */
  restartedServices?: ServiceTiming[]
  /** First failed to first healthy probe of health-url (restart: targeted). */
  apiDowntimeSeconds?: number
  backupPath?: string
  revokedRows?: number
  /** CI secrets now holding the new values. */
  updatedSecrets: SecretRef[]
  /** CI secrets written back to the old values after a failure. */
  restoredSecrets: SecretRef[]
  /** CI secrets that could not be written back. */
  unrestoredSecrets: Array<SecretRef & { error: string }>
  /** Of updatedSecrets, those this run created (create-missing). */
  createdSecrets?: SecretRef[]
  /** Secrets this run had created, deleted again after a failure. */
  removedSecrets?: SecretRef[]
  /** Writes whose answer was lost and could not be undone: their value is unknown. */
  unknownSecrets?: Array<SecretRef & { error: string }>
  /** Listed scopes skipped because they do not hold a name (notices). */
  skippedScopes?: string[]
  /** Environments named in ignore-environments that hold a rotated name. */
  ignoredEnvironments?: string[]
  health?: { status: 'verified' | 'failed' | 'skipped'; reason?: string }
  logins: LoginCheck[]
  logScan?: LogScanResult
  /** Phase 6 as a whole; a failed check never changes `result`. */
  verification?: 'passed' | 'failed' | 'skipped'
  rotationDateVariable?: { name: string; status: 'set' | 'skipped' | 'failed'; reason?: string }
  /** Dry run only: the steps, commands, files and scopes a real run would touch. */
  plan?: string[]
  /** When <KEY>_PREVIOUS may be retired (graceful mode). */
  retireAfter?: string
  /** Why then, e.g. "the longest token lifetime: refresh tokens JWT_REFRESH_EXPIRES_IN=7d". */
  retireAfterReason?: string
  issue?: { number: number; url: string }
}

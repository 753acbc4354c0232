// The schedule guard (input `min-age-days`): a run started by the `schedule`
// event rotates only when the last rotation, as the rotation-date variable
// records it, is at least `min-age-days` old. Dispatch (and every other event)
// always rotates: an incident must never be blocked. A variable that cannot be
// read or parsed never blocks a rotation either: it is a warning.
import * as core from '@actions/core'
import { ConfigError, type Config, type InputReader } from './config.js'
import { createOctokit, describeError, errorStatus } from './github/client.js'

export const MIN_AGE_DAYS_DEFAULT = 30
const DAY_MS = 24 * 60 * 60 * 1000

/** `min-age-days`: a whole number ≥ 0 (0 disables the guard); default 30. */
export function readMinAgeDays(read: InputReader): number {
  const raw = read('min-age-days').trim()
  if (raw === '') return MIN_AGE_DAYS_DEFAULT
  if (!/^\d+$/.test(raw)) {
    throw new ConfigError(
      'min-age-days',
      `expected a whole number of days ≥ 0 (0 disables the guard), got "${raw}"`
    )
  }
  const value = Number(raw)
  if (!Number.isSafeInteger(value) || value > 36500) {
    throw new ConfigError('min-age-days', `expected at most 36500 days, got "${raw}"`)
  }
  return value
}

/** What reading the rotation-date variable gave. */
export type VariableRead =
  { status: 'found'; value: string } | { status: 'missing' } | { status: 'error'; error: string }

export interface GuardInput {
  eventName: string | undefined
  minAgeDays: number
  /** Name of the rotation-date variable; '' when the action keeps none. */
  variableName: string
  /** Whether this run would rotate secrets (not dry-run, recover or retire-previous). */
  rotates: boolean
  now: Date
  readVariable: (name: string) => Promise<VariableRead>
}

export type GuardDecision =
  | { action: 'rotate'; notice?: string; warning?: string }
  | { action: 'skip'; notice: string; lastRotation: string; ageDays: number }

function days(ms: number): number {
  return Math.floor((ms / DAY_MS) * 10) / 10
}

/** Decides whether a run goes ahead. Never throws. */
export async function scheduleGuard(input: GuardInput): Promise<GuardDecision> {
  if (input.eventName !== 'schedule') return { action: 'rotate' }
  if (input.minAgeDays === 0) return { action: 'rotate' }
  if (!input.rotates) return { action: 'rotate' }
  if (input.variableName === '') {
    return {
      action: 'rotate',
      notice: `min-age-days ${input.minAgeDays}: rotation-date-variable is empty, so the last rotation date is not known; rotating`
    }
  }
  let read: VariableRead
  try {
    read = await input.readVariable(input.variableName)
  } catch (error) {
    read = { status: 'error', error: describeError(error) }
  }
  if (read.status === 'missing') {
    return {
      action: 'rotate',
      notice: `min-age-days ${input.minAgeDays}: repository variable ${input.variableName} does not exist (no rotation recorded yet); rotating`
    }
  }
  if (read.status === 'error') {
    return {
      action: 'rotate',
      warning: `min-age-days ${input.minAgeDays}: could not read repository variable ${input.variableName} (${read.error}); the age of the last rotation is unknown, rotating anyway (the guard never blocks a rotation it cannot justify)`
    }
  }
  const value = read.value.trim()
  const at = /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value)
    ? Date.parse(value)
    : NaN
  if (Number.isNaN(at)) {
    return {
      action: 'rotate',
      warning: `min-age-days ${input.minAgeDays}: repository variable ${input.variableName} is not an ISO-8601 date (${JSON.stringify(value.slice(0, 40))}); the age of the last rotation is unknown, rotating anyway`
    }
  }
  const age = input.now.getTime() - at
  if (age < 0) {
    return {
      action: 'rotate',
      warning: `min-age-days ${input.minAgeDays}: repository variable ${input.variableName} holds a date in the future (${value}); the age of the last rotation is unknown, rotating anyway`
    }
  }
  if (age < input.minAgeDays * DAY_MS) {
    return {
      action: 'skip',
      lastRotation: value,
      ageDays: days(age),
      notice: `Scheduled rotation skipped: the last rotation (${input.variableName} = ${value}) is ${days(age)} day(s) old, younger than min-age-days ${input.minAgeDays}. Nothing was contacted on the host or changed anywhere. Run the workflow by hand to rotate now.`
    }
  }
  return {
    action: 'rotate',
    notice: `min-age-days ${input.minAgeDays}: the last rotation (${value}) is ${days(age)} day(s) old; rotating`
  }
}

/** Reads a repository variable with the secrets token (it has "Variables" access). */
export function variableReader(
  config: Pick<Config, 'secretsToken' | 'owner' | 'repo'>
): (name: string) => Promise<VariableRead> {
  return async (name) => {
    try {
      const response = await createOctokit(config.secretsToken).request(
        'GET /repos/{owner}/{repo}/actions/variables/{name}',
        { owner: config.owner, repo: config.repo, name }
      )
      return { status: 'found', value: String((response.data as { value?: unknown }).value ?? '') }
    } catch (error) {
      if (errorStatus(error) === 404) return { status: 'missing' }
      return { status: 'error', error: describeError(error) }
    }
  }
}

/**
 * Applies the guard for main.ts: logs its notice or warning and, when the run
 * is skipped, writes the summary line and `result: skipped`. Returns whether
 * the run must stop here (nothing was changed).
 */
export async function applyScheduleGuard(
  config: Config,
  minAgeDays: number,
  env: NodeJS.ProcessEnv = process.env
): Promise<boolean> {
  const decision = await scheduleGuard({
    eventName: env.GITHUB_EVENT_NAME,
    minAgeDays,
    variableName: config.rotationDateVariable,
    rotates: !config.dryRun && !config.recover && config.mode !== 'retire-previous',
    now: new Date(),
    readVariable: variableReader(config)
  })
  if (decision.action === 'rotate') {
    if (decision.warning) core.warning(decision.warning)
    if (decision.notice) core.info(decision.notice)
    return false
  }
  core.notice(decision.notice, { title: 'JWT secret rotation skipped' })
  core.setOutput('result', 'skipped')
  core.setOutput('verification', 'skipped')
  if (env.GITHUB_STEP_SUMMARY) {
    try {
      await core.summary
        .addRaw(`## ⏭️ JWT secret rotation skipped\n\n${decision.notice.replace(/[<>]/g, '')}\n`)
        .write()
    } catch (error) {
      core.warning(`Job summary not written: ${describeError(error)}`)
    }
  }
  return true
}

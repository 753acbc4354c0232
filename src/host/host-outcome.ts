// The host sequence's journal, read into the run's outcome (pure apart from
// the log lines): what its result means, what changed, the state now, and
// what the .env holds for compensation. Shared by the main and post steps.
import * as core from '@actions/core'
import type { Config } from '../config.js'
import type { HostStep, Outcome } from '../outcome.js'
import { envValue } from './dotenv.js'
import type { JournalEvent } from './journal.js'
import { retireAfterMs } from './plan.js'
import type { FollowResult } from './sequence.js'
import { manualStartCommand } from './swarm-plan.js'

/** One journal event as a log line, as it arrives. */
export function logJournalEvent(event: JournalEvent): void {
  const t = new Date(event.at).toISOString().slice(11, 23)
  switch (event.event) {
    case 'step-start':
      core.info(`[${t}] ▶ ${event.step}${event.detail ? ` (${event.detail})` : ''}`)
      break
    case 'step-end':
      core.info(
        `[${t}] ${event.status === 'ok' ? '✔' : '✘'} ${event.step}${event.detail ? `: ${event.detail}` : ''}`
      )
      break
    case 'info':
      core.info(`[${t}]   ${event.step}: ${event.detail ?? ''}`)
      break
    case 'rollback-start':
      core.warning(`[${t}] rolling back after ${event.detail ?? 'a failed step'}`)
      break
    case 'result':
      core.info(`[${t}] host result: ${event.status}${event.detail ? ` (${event.detail})` : ''}`)
      break
    default:
      core.info(`[${t}] ${event.event} ${event.status ?? ''} ${event.detail ?? ''}`.trimEnd())
  }
}

/** Steps, timings, downtime, backup and revoked rows of a followed sequence. */
export function absorbSummary(outcome: Outcome, summary: FollowResult): void {
  outcome.hostSteps = summary.steps.map((s): HostStep => ({
    name: s.name,
    status: s.status,
    seconds: s.endedAt !== undefined ? Math.round((s.endedAt - s.startedAt) / 100) / 10 : undefined,
    detail: s.detail
  }))
  outcome.hostResult = summary.result
  outcome.downtimeSeconds = summary.downtimeSeconds
  if (summary.services) outcome.restartedServices = summary.services
  if (summary.apiDowntimeSeconds !== undefined)
    outcome.apiDowntimeSeconds = summary.apiDowntimeSeconds
  const unexpected = (summary.services ?? []).filter((s) => !s.target).map((s) => s.service)
  if (unexpected.length > 0)
    core.warning(
      `compose also recreated ${unexpected.join(', ')}, which receive no rotated key (their configuration changed since they were started): they run on the current compose file now`
    )
  if (summary.backupPath) outcome.backupPath = summary.backupPath
  const revoke = summary.steps.find((s) => s.name === 'revoke' && s.status === 'ok')
  const rows = /rows=(\d+)/.exec(revoke?.detail ?? '')
  if (rows) outcome.revokedRows = Number(rows[1])
}

/**
 * What the host's result means for the run: result, failure, what changed
 * and the state now. True when the host ended where it should (success or
 * recovered).
 */
export function applyHostResult(
  outcome: Outcome,
  c: Config,
  summary: FollowResult,
  host: { envText: string; composeCommand: string }
): boolean {
  const where = `${c.deployPath}/${c.envFile}`
  switch (summary.result) {
    case 'success':
      outcome.result = 'success'
      outcome.changed.push(
        c.mode === 'retire-previous'
          ? `${where}: *_PREVIOUS lines removed; services recreated`
          : `${where}: ${c.keys.map((k) => k.envKey).join(', ')} replaced${c.mode === 'graceful' ? ' (old values kept as *_PREVIOUS)' : ''}; services restarted`
      )
      if (outcome.revokedRows !== undefined)
        outcome.changed.push(`${outcome.revokedRows} refresh token(s) revoked`)
      outcome.stateNow = 'production runs on the new secrets and answers its health check'
      if (c.mode === 'graceful') {
        const envText = host.envText
        const lifetime = retireAfterMs({
          access: envValue(envText, 'JWT_EXPIRES_IN'),
          refresh: envValue(envText, 'JWT_REFRESH_EXPIRES_IN')
        })
        // Tokens signed with the old key were issued until the services were
        // recreated: count from the host's own clock at that moment.
        const recreated =
          summary.steps.filter((s) => s.name === 'up' && s.endedAt !== undefined).at(-1)?.endedAt ??
          Date.parse(outcome.rotatedAt)
        outcome.retireAfter = new Date(recreated + lifetime.ms).toISOString()
        outcome.retireAfterReason = lifetime.why
      }
      return true
    case 'recovered':
      outcome.result = 'recovered'
      outcome.changed.push(
        summary.restoredFrom
          ? `${where}: restored from ${summary.restoredFrom}; services started`
          : `${where}: kept (the interrupted run died before its backup, so before changing it); services started`
      )
      outcome.stateNow = `production runs on the ${summary.restoredFrom ? 'restored' : 'kept'} .env and answers its health check`
      return true
    case 'aborted':
      outcome.result = 'failed'
      outcome.failure = `the host sequence stopped before changing anything (${summary.failedStep ?? '?'} failed${stepDetail(summary)})`
      outcome.stateNow = 'production untouched, still on the old secrets'
      return false
    case 'rolled-back':
      outcome.result = 'rolled-back'
      outcome.failure = `host step "${summary.failedStep ?? '?'}" failed${stepDetail(summary)}; the host rolled back`
      outcome.changed.push(`${where}: swapped, then restored from the backup; services restarted`)
      outcome.stateNow = 'production is back on the old secrets and answers its health check'
      if (summary.steps.some((s) => s.name === 'revoke' && s.status === 'ok')) {
        outcome.changed.push(
          'the refresh tokens were revoked before the failure: EVERY USER WAS LOGGED OUT and must sign in again (on the old secrets)'
        )
        outcome.stateNow += '; every user was logged out (their refresh tokens were revoked)'
      }
      return false
    default:
      outcome.result = 'failed'
      outcome.failure = `host step "${summary.failedStep ?? '?'}" failed${stepDetail(summary)} and the rollback failed too (${summary.result})`
      outcome.stateNow = `PRODUCTION MAY BE DOWN: the backup was ${summary.steps.some((s) => s.name === 'rollback-restore' && s.status === 'ok') ? 'restored' : 'NOT restored'} to ${where}, but the services did not come back healthy. Look at ${c.deployPath}/.rotation/host.log and run "${manualStartCommand(c, host.composeCommand)}" by hand`
      outcome.changed.push(`${where}: swapped and rollback attempted`)
      return false
  }
}

function stepDetail(summary: FollowResult): string {
  const step = summary.steps.find((s) => s.name === summary.failedStep)
  return step?.detail ? ` (${step.detail})` : ''
}

// ------------------------------------------------------------ 5. compensate
/** What the host's .env holds now, as far as this run knows. */
export function hostEnvState(
  outcome: Pick<Outcome, 'hostResult' | 'hostSteps'>,
  launch: { launched: boolean; launchUnknown: boolean } | undefined
): 'old' | 'new' | 'unknown' {
  if (launch?.launchUnknown) return 'unknown'
  if (!launch?.launched) return 'old'
  switch (outcome.hostResult) {
    case 'success':
      return 'new'
    case 'aborted':
    case 'rolled-back':
      return 'old'
    case undefined:
      return 'unknown'
    default:
      // rollback-failed: the .env is old again unless restoring it failed.
      return outcome.hostSteps.some((s) => s.name === 'rollback-restore' && s.status === 'fail')
        ? 'unknown'
        : 'old'
  }
}

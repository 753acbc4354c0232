// The post step (action.yml `runs.post`, `post-if: always()`): finishes the
// report of a main step that was cancelled or killed before it could.
//
// It reads what the main step saved (post/state.ts: phase, what was written
// where, never a value). When the main step reported the true end state, it
// does nothing. Otherwise it reconnects over SSH, asks the host whether this
// run's sequence started (fencing it off for good when it had not), follows
// the journal to its end (bounded by the same timeouts as the main step), and:
//
// - host on the new values (success): the CI secrets hold them too (they are
//   written before the host starts); the rotation-date variable is set.
// - host on the old values (never started, aborted, rolled back): every CI
//   secret that may hold a new value is written back to the old one. The new
//   values are not in the saved state, and neither are the old ones: the old
//   values are re-read over SSH from this run's backup (or the untouched .env)
//   and used only when the file's SHA-256 equals the one preflight recorded,
//   so they are exactly what production was running on.
// - anything else (host unreachable, end not seen, backup not recognised):
//   nothing is written to CI; the step fails with an annotation saying what it
//   could not do and the last state it knew.
//
// Then it writes the issue (replacing the main step's provisional one when
// there is one, so each run has one issue), the summary and the variable as
// the main step would have.
import * as core from '@actions/core'
import { readConfig, type Config } from './config.js'
import type { JournalEvent } from './host/journal.js'
import { followDeadlineSeconds } from './host/plan.js'
import { absorbSummary } from './host/host-outcome.js'
import { hostSteps } from './host/swarm-plan.js'
import type { SecretRef } from './outcome.js'
import { compensate } from './post/compensate.js'
import { followHost } from './post/host.js'
import { baseOutcome, hostEnvAfter, lastKnown } from './post/outcome.js'
import { report } from './post/report.js'
import { readRunState, STATE_NAME, type RunState } from './post/state.js'

const key = (s: SecretRef): string => `${s.scope}/${s.name}`

function logEvent(event: JournalEvent): void {
  const t = new Date(event.at).toISOString().slice(11, 23)
  core.info(
    `[${t}] ${event.event}${event.step && event.step !== '-' ? ` ${event.step}` : ''}${event.status ? ` ${event.status}` : ''}${event.detail ? ` (${event.detail})` : ''}`
  )
}

export async function runPost(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let state: RunState | undefined
  try {
    state = readRunState(core.getState(STATE_NAME))
  } catch (error) {
    core.setFailed(
      `post step: the state the main step saved cannot be read (${(error as Error).message}): it did nothing. Check this run's log, the host journal (.rotation/journal) and the CI secrets by hand`
    )
    return
  }
  if (state === undefined) {
    core.info(
      'Post: the main step saved no rotation state (it stopped before preflight): nothing to do'
    )
    return
  }
  if (state.dryRun) {
    core.info('Post: a dry run changes nothing: nothing to do')
    return
  }
  if (state.reported && state.final) {
    core.info('Post: the main step finished its report: nothing to do')
    return
  }
  let config: Config
  try {
    config = readConfig((name) => core.getInput(name))
  } catch (error) {
    core.setFailed(
      `post step: ${(error as Error).message}; it could not reconnect. ${lastKnown(state)}`
    )
    return
  }
  for (const value of [
    config.secretsToken,
    config.githubToken,
    config.ssh.privateKey,
    config.ssh.passphrase
  ]) {
    if (value) core.setSecret(value)
  }
  core.info(
    `Post: the main step ${state.reported ? 'reported without seeing the end of the host sequence' : 'did not finish its report'}; ${lastKnown(state)}`
  )
  const o = baseOutcome(config, state, env)
  const problems: string[] = []

  // ------------------------------------------------------------ host
  const deadline = followDeadlineSeconds(
    config,
    hostSteps(config, config.recover ? 'recover' : config.mode).length
  )
  core.info(`Post: reconnecting to ${o.host} to follow the host journal (at most ${deadline} s)`)
  const link = await core.group('Post: host', () =>
    followHost(
      config,
      { id: state.runId, by: 'post' },
      logEvent,
      AbortSignal.timeout(deadline * 1000 + 30000)
    )
  )
  if (link.end.kind === 'followed') absorbSummary(o, link.end.summary)
  const hostEnv = hostEnvAfter(link.end)
  const where = `${config.deployPath}/${config.envFile}`
  const ciMaybeNew = state.ciPlanned.filter((s) => !state.ciRestored.some((r) => key(r) === key(s)))

  // ------------------------------------------------------------ outcome of the host
  if (link.end.kind === 'unknown' || hostEnv === 'unknown') {
    const why =
      link.end.kind === 'unknown'
        ? link.end.why
        : link.end.kind === 'followed'
          ? (link.end.summary.followError ??
            `the host sequence ended in ${link.end.summary.result ?? 'no result'}`)
          : 'unknown'
    problems.push(`could not learn the host's end state: ${why}`)
    o.failure = `${o.failure}; the host's end state could not be learned (${why})`
    o.stateNow = `UNKNOWN: ${lastKnown(state)}. Check ${config.deployPath}/.rotation/journal and the services, then re-run the rotation (or run with recover: true)`
    if (ciMaybeNew.length > 0) {
      o.updatedSecrets = state.ciWritten
      o.mismatch = `CI secrets ${ciMaybeNew.map(key).join(', ')} may hold the NEW values and the host's state is unknown: the post step wrote nothing to CI. Check the host journal, then re-run the rotation.`
    }
  } else {
    const summary = link.end.kind === 'followed' ? link.end.summary : undefined
    if (link.end.kind === 'not-started') {
      o.stateNow = 'production untouched, still on the old secrets'
      if (state.phase === 'host-launching')
        o.changed.push('the host sequence never started (fenced off by the post step)')
    } else if (summary?.result === 'success' || summary?.result === 'recovered') {
      o.result = summary.result
      o.changed.push(`host sequence ran on ${config.ssh.host}`)
      o.changed.push(
        summary.result === 'recovered'
          ? `${where}: restored from ${summary.restoredFrom ?? 'the newest backup'}; services started`
          : `${where}: ${config.keys.map((k) => k.envKey).join(', ')} replaced; services restarted`
      )
      if (o.revokedRows !== undefined) o.changed.push(`${o.revokedRows} refresh token(s) revoked`)
      o.stateNow = 'production runs on the new secrets and answered its health check'
      o.updatedSecrets = state.ciWritten
      if (state.ciWritten.length > 0)
        o.changed.unshift(
          `CI secrets set to the new values: ${state.ciWritten.map(key).join(', ')}`
        )
      const why =
        'not run: the main step was cancelled before verifying; the post step does not verify'
      o.health = { status: 'skipped', reason: why }
      o.logins = [
        { account: 'admin', status: 'skipped', reason: why },
        { account: 'user', status: 'skipped', reason: why }
      ]
      o.logScan = {
        status: 'skipped',
        total: 0,
        expected: 0,
        configErrors: 0,
        samples: [],
        reason: why
      }
      o.verification = 'skipped'
    } else {
      o.result = summary?.result === 'rolled-back' ? 'rolled-back' : 'failed'
      o.failure = `${o.failure}; host: ${summary?.result ?? '?'}${summary?.failedStep ? ` (step "${summary.failedStep}" failed)` : ''}`
      if (summary?.result !== 'aborted')
        o.changed.push(`${where}: swapped, then restored from the backup; services restarted`)
      o.stateNow = 'production is back on the old secrets'
    }

    // ---------------------------------------------------------- CI compensation
    if (hostEnv === 'old' && ciMaybeNew.length > 0) {
      const compensated = await core.group('Post: compensate CI secrets', () =>
        compensate(config, state, link, o, ciMaybeNew)
      )
      if (!compensated.ok) problems.push(compensated.problem)
    } else if (hostEnv === 'old') {
      o.restoredSecrets = state.ciRestored
      if (state.ciRestored.length > 0) o.stateNow += '; CI secrets are back on the old values'
    }
  }
  link.session?.close()

  // ------------------------------------------------------------ report
  await core.group('Post: report', () => report(config, state, o, problems))
  const summaryLine = `JWT secret rotation ${o.result} (finished by the post step): ${o.failure ?? ''}. Changed: ${o.changed.join('; ') || 'nothing'}. Now: ${o.stateNow}.${o.mismatch ? ` ${o.mismatch}` : ''}`
  if (problems.length > 0) {
    core.setFailed(
      `post step could not ${problems.join('; and could not ')}. ${lastKnown(state)}. ${summaryLine}`
    )
  } else if (o.result === 'failed' || o.result === 'rolled-back') {
    core.setFailed(summaryLine)
  } else {
    core.info(summaryLine)
  }
}

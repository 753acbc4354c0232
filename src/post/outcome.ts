// The post step's pure judgments: what the host holds at the end, the last
// state the main step recorded, and the outcome it starts from.
import type { Config } from '../config.js'
import type { Outcome, SecretRef } from '../outcome.js'
import type { HostLink } from './host.js'
import type { RunState } from './state.js'

const key = (s: SecretRef): string => `${s.scope}/${s.name}`

/** What the host's .env holds at the end, as far as the post step knows. */
export function hostEnvAfter(link: HostLink['end']): 'old' | 'new' | 'unknown' {
  if (link.kind === 'not-started') return 'old'
  if (link.kind === 'unknown' || !link.summary.terminal) return 'unknown'
  switch (link.summary.result) {
    case 'success':
    case 'recovered':
      // What this run meant the host to hold (recover: the restored .env).
      return 'new'
    case 'aborted':
    case 'rolled-back':
      return 'old'
    case 'rollback-failed':
      return link.summary.steps.some((s) => s.name === 'rollback-restore' && s.status === 'fail')
        ? 'unknown'
        : 'old'
    default:
      return 'unknown'
  }
}

/** The last state the main step recorded, in words (for annotations). */
export function lastKnown(state: RunState): string {
  const planned = state.ciPlanned.map(key)
  const written = state.ciWritten.map(key)
  const restored = state.ciRestored.map(key)
  const ci =
    planned.length === 0
      ? 'no CI secret was written'
      : `CI secrets written with new values: ${written.join(', ') || 'none confirmed'}${
          planned.length > written.length
            ? ` (unknown for ${planned.filter((p) => !written.includes(p)).join(', ')})`
            : ''
        }${restored.length > 0 ? `; written back to the old values: ${restored.join(', ')}` : ''}`
  const host: Record<RunState['phase'], string> = {
    started: 'the host was not changed (preflight had not finished; its lock may be held)',
    'preflight-done': 'the host was not changed (this run holds its lock)',
    'ci-writing': 'the host was not changed (this run holds its lock)',
    'host-launching': 'whether the host sequence started is unknown',
    'host-launched': 'the host sequence was running; its end is unknown',
    'host-done': `the host sequence ended: ${state.hostResult ?? '?'}`,
    verifying: `the host sequence ended: ${state.hostResult ?? '?'}; verification was running`
  }
  return `last known state (phase ${state.phase}): ${host[state.phase]}; ${ci}`
}

export function baseOutcome(config: Config, state: RunState, env: NodeJS.ProcessEnv): Outcome {
  const runUrl =
    env.GITHUB_RUN_ID && env.GITHUB_REPOSITORY
      ? `${env.GITHUB_SERVER_URL ?? 'https://github.com'}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}`
      : undefined
  return {
    result: 'failed',
    rotatedAt: state.rotatedAt,
    mode: config.mode,
    recover: config.recover,
    dryRun: false,
    reason: config.reason,
    repository: `${config.owner}/${config.repo}`,
    triggeredBy: env.GITHUB_TRIGGERING_ACTOR || env.GITHUB_ACTOR || 'unknown',
    runUrl,
    host: `${config.ssh.user}@${config.ssh.host}:${config.ssh.port}`,
    changed: [],
    stateNow: 'unknown',
    hostSteps: [],
    ...(config.recover ? {} : { restart: config.restart }),
    updatedSecrets: [],
    restoredSecrets: [],
    unrestoredSecrets: [],
    logins: [],
    failure: `the workflow was cancelled or the main step was killed (it stopped at phase ${state.phase}); the post step finished this report`
  }
}

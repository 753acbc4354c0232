// Pure parts of the host sequence: which steps a mode runs, how parameters
// reach the host script, and what its preflight report means.
import type { Config, Mode, Restart } from '../config.js'

export type HostMode = Mode | 'recover'

export function stepsFor(mode: HostMode, restart: Restart = 'all'): string[] {
  switch (mode) {
    case 'immediate':
      return restart === 'targeted'
        ? // Stop only the services that receive a rotated key; PostgreSQL keeps running.
          ['prepare', 'backup', 'stop', 'swap', 'revoke', 'up', 'health']
        : ['backup', 'down', 'swap', 'up-postgres', 'wait-postgres', 'revoke', 'up', 'health']
    case 'graceful':
    case 'retire-previous':
      // No `down`: `up -d` recreates exactly the services whose environment changed.
      return restart === 'targeted'
        ? ['prepare', 'backup', 'swap', 'up', 'health']
        : ['backup', 'swap', 'up', 'health']
    case 'recover':
      return ['recover-restore', 'up', 'health']
  }
}

/** One shell word, single-quoted. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`
}

export function renderAssignments(params: Record<string, string | number>): string {
  return (
    Object.entries(params)
      .map(([key, value]) => {
        if (!/^[A-Z_][A-Z0-9_]*$/.test(key)) throw new Error(`bad parameter name ${key}`)
        const text = String(value)
        if (/[\0\n\r]/.test(text)) throw new Error(`parameter ${key} holds a line break`)
        return `${key}=${shellQuote(text)}`
      })
      .join('\n') + '\n'
  )
}

/** The step timeout bounds every compose call, so a hung CLI ends in a rollback. */
export function stepTimeoutSeconds(config: Pick<Config, 'healthTimeoutSeconds'>): number {
  return Math.max(60, 2 * config.healthTimeoutSeconds)
}

/**
 * How long the action follows the host sequence at most: every step and the
 * three rollback steps at their step timeout, plus a margin. Past it the
 * sequence is declared lost (state unknown), never guessed.
 */
export function followDeadlineSeconds(
  config: Pick<Config, 'healthTimeoutSeconds'>,
  stepCount: number
): number {
  return (stepCount + 3) * stepTimeoutSeconds(config) + 120
}

/**
 * The env file every compose call is given with --env-file: without it,
 * compose >= 1.28 reads the .env beside the first -f file instead.
 */
export function envFilePath(config: Pick<Config, 'deployPath' | 'envFile'>): string {
  return `${config.deployPath.replace(/\/+$/, '')}/${config.envFile}`
}

/** `.env.backup.<YYYYmmddTHHMMSSZ>` stamp of an ISO time. */
export function backupStamp(iso: string): string {
  return iso.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')
}

export interface HostFacts {
  deploy?: string
  composeFile?: string
  envFile?: string
  envMode?: string
  envOwner?: string
  deployWritable?: string
  composeCmd?: string
  composeVersion?: string
  composeConfigError?: string
  services: string[]
  httpClient?: string
  detach: string[]
  /** logind's KillUserProcesses as the SSH user's host reports it (systemd hosts). */
  killUserProcesses?: string
  linger?: string
  /** COMPOSE_PROJECT_NAME in the SSH session, and how many containers that project runs. */
  composeProject?: string
  composeRunning?: number
  /** The real file behind the .env (itself when it is no link). */
  envReal?: string
  /** Set when the .env is a symlink: its resolved target. */
  envLink?: string
  /** Non-root only: whether the SSH user can give a new file the .env's owner and group. */
  envOwnerKeep?: string
  envDirWritable?: string
  timeout?: string
  journal?: 'none' | 'terminal' | 'running' | 'interrupted'
  journalAge?: string
  journalLastStep?: string
  lockHolder?: string
  lockAge?: string
  lockHolderAlive?: string
  lock?: 'taken' | 'busy' | 'not-taken'
  recover?: string
}

export function parsePreflight(stdout: string): HostFacts {
  const facts: HostFacts = { services: [], detach: [] }
  for (const line of stdout.split('\n')) {
    const at = line.indexOf('=')
    if (at <= 0) continue
    const key = line.slice(0, at)
    const value = line.slice(at + 1).trim()
    switch (key) {
      case 'deploy':
        facts.deploy = value
        break
      case 'compose_file':
        facts.composeFile = value
        break
      case 'env_file':
        facts.envFile = value
        break
      case 'env_stat': {
        if (value === 'unreadable') {
          facts.envMode = 'unreadable'
          break
        }
        const [mode, owner] = value.split(' ')
        facts.envMode = mode
        facts.envOwner = owner
        break
      }
      case 'env_real':
        facts.envReal = value
        break
      case 'env_link':
        facts.envLink = value
        break
      case 'env_owner_keep':
        facts.envOwnerKeep = value
        break
      case 'env_dir_writable':
        facts.envDirWritable = value
        break
      case 'timeout':
        facts.timeout = value
        break
      case 'deploy_writable':
        facts.deployWritable = value
        break
      case 'compose_cmd':
        facts.composeCmd = value
        break
      case 'compose_version':
        facts.composeVersion = value
        break
      case 'compose_config_error':
        facts.composeConfigError = value
        break
      case 'services':
        facts.services = value.split(/\s+/).filter(Boolean)
        break
      case 'http_client':
        facts.httpClient = value
        break
      case 'detach':
        facts.detach.push(value)
        break
      case 'kill_user_processes':
        facts.killUserProcesses = value
        break
      case 'linger':
        facts.linger = value
        break
      case 'compose_project':
        facts.composeProject = value
        break
      case 'compose_running':
        facts.composeRunning = Number(value)
        break
      case 'journal':
        facts.journal = value as HostFacts['journal']
        break
      case 'journal_age':
        facts.journalAge = value
        break
      case 'journal_last_step':
        facts.journalLastStep = value
        break
      case 'lock_holder':
        facts.lockHolder = value
        break
      case 'lock_age':
        facts.lockAge = value
        break
      case 'lock_holder_alive':
        facts.lockHolderAlive = value
        break
      case 'lock':
        facts.lock = value as HostFacts['lock']
        break
      case 'recover':
        facts.recover = value
        break
    }
  }
  return facts
}

export type Detach = 'systemd-run' | 'systemd-run-user' | 'setsid'

/**
 * How the host sequence outlives the SSH session. Root with systemd: a
 * system unit. Otherwise setsid, unless logind kills the user's processes at
 * logout (KillUserProcesses): then only a user unit of a lingering user lives on.
 */
export function chooseDetach(
  facts: Pick<HostFacts, 'detach' | 'killUserProcesses' | 'linger'>
): { detach: Detach } | { problem: string } {
  if (facts.detach.includes('systemd-run')) return { detach: 'systemd-run' }
  const userUnits = facts.detach.includes('systemd-run-user-capable') && facts.linger === 'yes'
  const kills = facts.killUserProcesses ?? 'no'
  if (kills !== 'no') {
    if (userUnits) return { detach: 'systemd-run-user' }
    return {
      problem:
        kills === 'yes'
          ? 'logind kills the SSH user\'s processes when the session ends (KillUserProcesses=yes), so a cancelled or dropped run could stop the sequence right after "down". Enable lingering for the SSH user (loginctl enable-linger <user>, so the sequence runs as a user unit), or connect as root'
          : "cannot tell whether logind kills the SSH user's processes when the session ends (busctl did not answer): enable lingering for the SSH user (loginctl enable-linger <user>) or connect as root"
    }
  }
  if (facts.detach.includes('setsid')) return { detach: 'setsid' }
  if (userUnits) return { detach: 'systemd-run-user' }
  return {
    problem:
      'neither setsid nor systemd-run is usable on the host: the sequence cannot run detached'
  }
}

/** Every reason the host refuses, in words a person at 3 a.m. can act on. */
export function preflightProblems(
  facts: HostFacts,
  config: Pick<
    Config,
    'deployPath' | 'composeFile' | 'envFile' | 'composeCommand' | 'postgresService'
  >,
  recover: boolean
): string[] {
  const problems: string[] = []
  const deploy = config.deployPath
  if (facts.deploy !== 'ok') {
    problems.push(`deploy-path ${deploy} does not exist on the host (or is not readable)`)
    return problems
  }
  if (facts.composeFile !== 'ok') {
    problems.push(`compose file ${deploy}/${config.composeFile} does not exist or is not readable`)
  }
  if (facts.envFile === 'missing')
    problems.push(`env file ${deploy}/${config.envFile} does not exist`)
  else if (facts.envFile !== 'ok') {
    problems.push(
      `env file ${deploy}/${config.envFile} is not readable and writable by the SSH user`
    )
  }
  if (facts.deployWritable === 'no') {
    problems.push(
      `${deploy} is not writable by the SSH user (backups and the atomic rename need it)`
    )
  }
  if (facts.composeCmd === 'none' || facts.composeCmd === undefined) {
    problems.push(
      config.composeCommand === null
        ? 'no compose CLI found on the host: neither "docker compose" nor "docker-compose" answers "version"'
        : `compose-command "${config.composeCommand}" does not answer "version" on the host`
    )
  }
  if (facts.composeConfigError) {
    // docker-compose 1.29 follows with the service's whole environment: keep the first part.
    problems.push(
      `the compose file does not load: ${facts.composeConfigError.split(' interpolating ')[0].slice(0, 200)}`
    )
  } else if (facts.services.length > 0 && !facts.services.includes(config.postgresService)) {
    problems.push(
      `postgres-service "${config.postgresService}" is not a service of ${config.composeFile} (services: ${facts.services.join(', ')})`
    )
  }
  if (facts.httpClient === 'none')
    problems.push('neither curl nor wget is installed on the host (the health check needs one)')
  const detach = chooseDetach(facts)
  if ('problem' in detach) problems.push(detach.problem)
  // An interrupted run explains an empty project: recover says what to do.
  if (!recover && facts.composeRunning === 0 && facts.journal !== 'interrupted') {
    problems.push(
      `the compose project${facts.composeProject ? ` "${facts.composeProject}" (COMPOSE_PROJECT_NAME)` : ''} of ${config.composeFile} has no container on the host: the rotation would restart nothing that runs. Check compose-file, and COMPOSE_PROJECT_NAME in the SSH user's environment or the .env`
    )
  }
  if (facts.envFile === 'unresolvable') {
    problems.push(
      `env file ${deploy}/${config.envFile} is a symlink whose target cannot be resolved (readlink -f): point it at the real file`
    )
  }
  if (facts.envMode === 'unreadable') {
    problems.push(
      `the mode and owner of ${facts.envReal ?? `${deploy}/${config.envFile}`} cannot be read (stat -L): the new .env could not keep them, so nothing was changed`
    )
  }
  if (facts.envOwnerKeep === 'no-owner' || facts.envOwnerKeep === 'no-group') {
    const [uid, gid] = (facts.envOwner ?? '?:?').split(':')
    problems.push(
      facts.envOwnerKeep === 'no-owner'
        ? `${facts.envReal ?? config.envFile} is owned by uid ${uid}, not by the SSH user: a file the SSH user writes would be owned by it and the app could lose read access. Use the owning user (or root) as ssh-user, or chown the file to the SSH user`
        : `${facts.envReal ?? config.envFile} belongs to group ${gid}, which the SSH user is not in: the new file could not keep that group and the app could lose read access. Add the SSH user to group ${gid} (or use root as ssh-user)`
    )
  }
  if (facts.envDirWritable === 'no') {
    problems.push(
      `${facts.envReal ? facts.envReal.replace(/\/[^/]*$/, '') : deploy} (the directory of the .env target) is not writable by the SSH user: the backups and the atomic rename happen there`
    )
  }
  if (facts.timeout === 'none') {
    problems.push(
      '`timeout` (coreutils) is not installed on the host: every compose call of the sequence is bounded by it'
    )
  }
  if (problems.length > 0) return problems

  if (recover) {
    if (facts.recover === 'nothing-to-recover') {
      problems.push(
        `nothing to recover: the last rotation journal on the host is ${facts.journal === 'none' ? 'absent' : facts.journal === 'running' ? 'still running' : 'complete'}`
      )
    }
  } else if (facts.journal === 'running') {
    problems.push(
      `another rotation is running on the host right now (lock held by ${facts.lockHolder ?? 'unknown'}, for ${facts.lockAge ?? '?'} s)`
    )
  } else if (facts.journal === 'interrupted') {
    problems.push(
      `an earlier rotation was interrupted on the host (its process is gone; last journal line: "${facts.journalLastStep ?? '?'}", ${facts.journalAge ?? '?'} s ago). Run this action with recover: true to restore the newest backup and bring the services back, then rotate again`
    )
  }
  if (problems.length === 0 && facts.lock !== 'taken') {
    if (facts.lockHolder !== undefined) {
      const stale = facts.lockHolderAlive !== 'yes'
      problems.push(
        stale
          ? `stale rotation lock ${deploy}/.rotation/lock: held by ${facts.lockHolder} for ${facts.lockAge ?? '?'} s, and its holder is gone. It was not broken automatically: if no rotation is running, the run that took it stopped before starting the host sequence (production was not touched by it, but it may have written CI secrets). Remove the lock by hand (rm -r ${deploy}/.rotation/lock) and rotate again`
          : `another rotation holds the lock ${deploy}/.rotation/lock: ${facts.lockHolder} (for ${facts.lockAge ?? '?'} s)`
      )
    } else {
      problems.push(`could not take the rotation lock ${deploy}/.rotation/lock`)
    }
  }
  return problems
}

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60000,
  h: 3600000,
  d: 86400000,
  w: 604800000,
  y: 31557600000
}

/**
 * A jsonwebtoken `expiresIn` as CloudBox's .env gives it ("7d", "15m",
 * "2 days", or a bare number of seconds), in milliseconds; undefined when
 * unreadable.
 */
export function tokenLifetimeMs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const text = value.trim().toLowerCase()
  if (/^\d+$/.test(text)) return Number(text) * 1000
  const match =
    /^(\d+(?:\.\d+)?)\s*(ms|msecs?|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?|y|yrs?|years?)$/.exec(
      text
    )
  if (!match) return undefined
  const unit = match[2]
  const key = unit.startsWith('ms') || unit.startsWith('mil') ? 'ms' : unit[0]
  return Number(match[1]) * UNIT_MS[key]
}

/**
 * When `<KEY>_PREVIOUS` may go: once every token signed with the old secrets
 * has expired. CloudBox: access tokens (JWT_EXPIRES_IN, 15m), share cookies
 * (1 h), refresh tokens (JWT_REFRESH_EXPIRES_IN, 7d).
 */
export function retireAfterMs(env: { access?: string; refresh?: string }): {
  ms: number
  why: string
} {
  const refresh = tokenLifetimeMs(env.refresh) ?? (tokenLifetimeMs('7d') as number)
  const access = tokenLifetimeMs(env.access) ?? (tokenLifetimeMs('15m') as number)
  const ms = Math.max(refresh, access, 3600000)
  const why = `the longest token lifetime: refresh tokens ${env.refresh && tokenLifetimeMs(env.refresh) ? `JWT_REFRESH_EXPIRES_IN=${env.refresh}` : '7d (CloudBox default)'}`
  return { ms, why }
}

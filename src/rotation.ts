// The rotation, phase by phase (DESIGN §1): preflight, generate, CI secrets,
// host, compensate, verify. Reporting is the caller's (main.ts).
import * as core from '@actions/core'
import { scopeLabel, secretScopes, type Config, type SecretScope } from './config.js'
import { createOctokit, describeError, type Octokit } from './github/client.js'
import { preflightIssues } from './github/issue.js'
import {
  preflightSecretScopes,
  preflightVariables,
  writeSecrets,
  type ScopeKey,
  type SecretWrite,
  type WrittenSecret
} from './github/secrets.js'
import { envValue, removeEnvKeys, setEnvValues, setPreviousValues } from './host/dotenv.js'
import type { JournalEvent } from './host/journal.js'
import { backupStamp, envFilePath, retireAfterMs, type HostMode } from './host/plan.js'
import {
  HostRotation,
  textOf,
  type FollowResult,
  type HostState,
  type RunIdentity
} from './host/sequence.js'
import { HostSession } from './host/ssh.js'
import { restartLine, targetedCommands } from './host/targeted-plan.js'
import { hostSteps, swarmCommands, swarmRestartLine, swarmRollbackLine } from './host/swarm.js'
import type { HostStep, Outcome, SecretRef } from './outcome.js'
import { generateSecret } from './secrets/generate.js'
import { verificationOf, verifyRotation } from './verify/run.js'

export interface RunContext {
  run: RunIdentity
  runUrl?: string
  actor: string
  signal: AbortSignal
  now?: () => Date
}

function ref(written: { scope: SecretScope; name: string }): SecretRef {
  return { scope: scopeLabel(written.scope), name: written.name }
}

function mask(value: string): void {
  if (value !== '') core.setSecret(value)
}

export class Rotation {
  readonly outcome: Outcome
  private octokit: Octokit | undefined
  private scopeKeys: ScopeKey[] = []
  private session: HostSession | undefined
  private host: HostRotation | undefined
  private hostState: HostState | undefined
  private newValues: Record<string, string> = {}
  private written: WrittenSecret[] = []
  /** Host clock (ms) at the first step: the log scan's window starts there. */
  private hostStartedAt: number | undefined
  private readonly hostMode: HostMode

  constructor(
    private readonly config: Config,
    private readonly context: RunContext
  ) {
    this.hostMode = config.recover ? 'recover' : config.mode
    this.outcome = {
      result: 'failed',
      rotatedAt: (context.now?.() ?? new Date()).toISOString(),
      mode: config.mode,
      recover: config.recover,
      dryRun: config.dryRun,
      reason: config.reason,
      repository: `${config.owner}/${config.repo}`,
      triggeredBy: context.actor,
      runUrl: context.runUrl,
      host: `${config.ssh.user}@${config.ssh.host}:${config.ssh.port}`,
      changed: [],
      stateNow: 'nothing was changed',
      hostSteps: [],
      ...(config.recover ? {} : { restart: config.restart }),
      updatedSecrets: [],
      restoredSecrets: [],
      unrestoredSecrets: [],
      logins: []
    }
  }

  private get rotatesSecrets(): boolean {
    return !this.config.recover && this.config.mode !== 'retire-previous'
  }

  /** Runs every phase; never throws: the outcome says what happened. */
  async run(): Promise<Outcome> {
    try {
      if (!(await this.phase('1. Preflight', () => this.preflight()))) return this.outcome
      if (this.config.dryRun) {
        await this.phase('Plan (dry run)', () => this.dryRun())
        return this.outcome
      }
      if (this.rotatesSecrets) {
        await this.phase('2. Generate secrets', () => this.generate())
        if (!(await this.phase('3. CI secrets', () => this.writeCiSecrets()))) return this.outcome
      }
      if (this.cancelled('before the host sequence started')) {
        await this.phase('5. Compensate CI secrets', () => this.compensate())
        return this.outcome
      }
      const hostOk = await this.phase('4. Host sequence', () => this.runHost())
      if (!hostOk || this.outcome.result === 'rolled-back' || this.outcome.result === 'failed') {
        await this.phase('5. Compensate CI secrets', () => this.compensate())
        return this.outcome
      }
      if (this.config.recover)
        await this.phase('5. Compensate CI secrets', () => this.alignAfterRecovery())
      await this.verify()
      return this.outcome
    } finally {
      await this.releaseIfHeld()
      this.session?.close()
    }
  }

  /** Runs a phase in a log group; a thrown error fails the run with what is known. */
  private async phase(title: string, body: () => Promise<void | boolean>): Promise<boolean> {
    return core.group(title, async () => {
      try {
        const value = await body()
        return value !== false
      } catch (error) {
        this.fail(title, error)
        return false
      }
    })
  }

  private fail(phase: string, error: unknown): void {
    const message = error instanceof Error ? error.message : String(error)
    this.outcome.result = 'failed'
    if (phase.startsWith('1.')) {
      // Anything that stops preflight is a refusal: nothing was changed.
      const problems = (error as { problems?: string[] }).problems ?? [message]
      this.outcome.refused = problems
      this.outcome.failure = `preflight refused: ${problems.join('; ')}`
    } else {
      this.outcome.failure = `${phase.replace(/^\d+\.\s*/, '')} failed: ${message}`
    }
    core.error(this.outcome.failure)
  }

  private cancelled(where: string): boolean {
    if (!this.context.signal.aborted) return false
    this.outcome.result = 'failed'
    this.outcome.failure = `the workflow was cancelled ${where}`
    core.warning(this.outcome.failure)
    return true
  }

  // ------------------------------------------------------------ 1. preflight
  private async preflight(): Promise<void> {
    const c = this.config
    if (c.mode === 'graceful' && /incident|compromise|leak/i.test(c.reason)) {
      core.warning(
        'mode graceful keeps the OLD secrets valid as *_PREVIOUS until retire-previous runs: after a suspected compromise, rotate with mode immediate instead'
      )
    }
    this.octokit = createOctokit(c.secretsToken)
    const octokit = this.octokit
    // GitHub and SSH are checked side by side; the host lock comes after both.
    // Each GitHub check runs even when another failed: all problems at once.
    const github = (async (): Promise<void> => {
      const problems: string[] = []
      const check = async (body: () => Promise<void>): Promise<void> => {
        try {
          await body()
        } catch (error) {
          problems.push(
            ...((error as { problems?: string[] }).problems ?? [(error as Error).message])
          )
        }
      }
      if (this.rotatesSecrets || c.recover) {
        core.info(
          `GitHub: checking ${secretScopes(c).map(scopeLabel).join(', ')} of ${c.owner}/${c.repo}`
        )
        await check(async () => {
          this.scopeKeys = await preflightSecretScopes(octokit, c.owner, c.repo, secretScopes(c))
          core.info(`GitHub: token can use ${this.scopeKeys.length} secret scope(s)`)
        })
      }
      if (c.rotationDateVariable !== '' && this.rotatesSecrets) {
        await check(async () => {
          await preflightVariables(octokit, c.owner, c.repo, c.rotationDateVariable)
        })
      }
      if (c.createIssue && !c.dryRun) {
        await check(async () => {
          await preflightIssues(createOctokit(c.githubToken), c.owner, c.repo)
          core.info(`GitHub: github-token sees ${c.owner}/${c.repo} with issues enabled`)
        })
      }
      if (problems.length > 0) throw Object.assign(new Error(problems.join('; ')), { problems })
    })()
    core.info(`SSH: connecting to ${this.outcome.host} (host key: ${c.ssh.hostKey.kind})`)
    const [githubCheck, sshCheck] = await Promise.allSettled([github, HostSession.connect(c.ssh)])
    if (sshCheck.status === 'fulfilled') this.session = sshCheck.value
    const problems = [githubCheck, sshCheck].flatMap((check) =>
      check.status === 'rejected'
        ? ((check.reason as { problems?: string[] }).problems ?? [(check.reason as Error).message])
        : []
    )
    // The host is checked whenever SSH works, even when GitHub failed, so one
    // run lists every problem of both sides (the lock it takes is released).
    if (sshCheck.status === 'fulfilled') {
      const session = sshCheck.value
      core.info(
        `SSH: connected, host key ${session.hostFingerprint || '(not verified: insecure skip)'}`
      )
      this.host = new HostRotation(session, c, this.context.run, this.hostMode)
      try {
        this.hostState = await this.host.preflight(
          c.keys.map((k) => k.envKey),
          mask
        )
      } catch (error) {
        problems.push(
          ...((error as { problems?: string[] }).problems ?? [(error as Error).message])
        )
      }
    }
    if (problems.length > 0) throw Object.assign(new Error(problems.join('; ')), { problems })
    if (!this.hostState) throw new Error('host preflight gave no state')
    const f = this.hostState.facts
    core.info(
      `Host: ${f.composeCmd} (${f.composeVersion ?? '?'}), services: ${f.services.join(', ')}`
    )
    core.info(
      `Host: http client ${f.httpClient}, detached with ${this.hostState.detach}, lock taken`
    )
    core.info(
      `Host: ${this.hostState.envPath} holds ${c.keys.map((k) => k.envKey).join(', ')} and ENCRYPTION_KEY`
    )
    const targets = this.hostState.targets
    if (!c.recover && targets.length > 0) {
      this.outcome.restartTargets = targets.map((t) => ({
        service: t.service,
        why: t.reasons.join('; ')
      }))
      core.info(
        c.target === 'swarm'
          ? swarmRestartLine(c.stackName, targets)
          : restartLine(c.restart, targets)
      )
    }
  }

  private async dryRun(): Promise<void> {
    const c = this.config
    const state = this.hostState as HostState
    const compose = `${state.composeCommand} -f ${c.composeFile} --env-file ${envFilePath(c)}`
    const stamp = backupStamp(this.outcome.rotatedAt)
    const plan: string[] = []
    if (this.rotatesSecrets) {
      plan.push(
        `generate ${c.keys.length} secret(s) of ${c.secretBytes} random bytes (base64): ${c.keys.map((k) => k.envKey).join(', ')}`
      )
      for (const scope of secretScopes(c)) {
        plan.push(
          `write CI secrets ${c.keys.map((k) => k.secretName).join(', ')} in ${scopeLabel(scope)} (sealed with that scope's key)`
        )
      }
    }
    plan.push(`stage the new .env as ${c.deployPath}/.rotation/env.new (0600, SFTP)`)
    plan.push(
      `start the host sequence detached (${state.detach}) under the lock ${c.deployPath}/.rotation/lock`
    )
    const commands: Record<string, string> = {
      backup: `copy ${c.envFile} to ${c.envFile}.backup and ${c.envFile}.backup.${stamp} (0600, keep ${c.backupRetention})`,
      down: `${compose} down`,
      swap: `rename a copy of .rotation/env.new over ${state.facts.envReal ?? c.envFile}${state.facts.envLink ? ` (the target of the symlink ${c.envFile})` : ''} in its own directory (atomic, mode ${state.facts.envMode} and owner ${state.facts.envOwner} kept)`,
      'up-postgres': `${compose} up -d ${c.postgresService}`,
      'wait-postgres': `${compose} exec -T ${c.postgresService} pg_isready -U ${state.postgresUser} -d ${state.postgresDb}`,
      revoke: `${compose} exec -T ${c.postgresService} psql -v ON_ERROR_STOP=1 -U ${state.postgresUser} -d ${state.postgresDb} <<< ${JSON.stringify(c.revokeSql)}`,
      up: `${compose} up -d`,
      health: `${state.facts.httpClient} ${c.healthUrl} until 2xx (${c.healthTimeoutSeconds} s)`,
      'recover-restore': `restore the interrupted run's backup (${c.envFile}.backup.*, from its journal) over ${c.envFile}; keep ${c.envFile} when it made none`
    }
    const targets = state.targets.map((t) => t.service).join(' ')
    Object.assign(
      commands,
      targetedCommands(c, this.hostMode, compose, state.targets, {
        user: state.postgresUser,
        db: state.postgresDb
      })
    )
    if (c.target === 'swarm')
      Object.assign(
        commands,
        swarmCommands(c, state.targets, { user: state.postgresUser, db: state.postgresDb })
      )
    for (const step of hostSteps(c, this.hostMode)) plan.push(`host: ${step}: ${commands[step]}`)
    plan.push(
      c.target === 'swarm'
        ? swarmRollbackLine()
        : `on any failed step: ${c.restart === 'targeted' && !c.recover ? `stop ${targets}, ` : ''}restore the backup, up -d, health check; then write the old values back to the CI secrets`
    )
    for (const line of plan) core.info(line)
    this.outcome.plan = plan
    this.outcome.result = 'dry-run'
    this.outcome.stateNow = 'dry run: nothing was changed'
  }

  // ------------------------------------------------------------ 2. generate
  private async generate(): Promise<void> {
    for (const key of this.config.keys) {
      this.newValues[key.envKey] = generateSecret(this.config.secretBytes)
      core.info(`${key.envKey}: ${this.config.secretBytes} random bytes generated (masked)`)
    }
  }

  // ------------------------------------------------------------ 3. CI secrets
  private ciWrites(values: Record<string, string>): SecretWrite[] {
    const writes: SecretWrite[] = []
    for (const scope of secretScopes(this.config)) {
      for (const key of this.config.keys) {
        writes.push({ scope, name: key.secretName, value: values[key.envKey] })
      }
    }
    return writes
  }

  private async writeCiSecrets(): Promise<boolean> {
    const c = this.config
    const result = await writeSecrets(
      this.octokit as Octokit,
      c.owner,
      c.repo,
      this.scopeKeys,
      this.ciWrites(this.newValues),
      {
        onWritten: (w) => core.info(`${scopeLabel(w.scope)}: ${w.name} updated`)
      }
    )
    this.written = result.written
    this.outcome.updatedSecrets = result.written.map(ref)
    if (result.written.length > 0) {
      this.outcome.stateNow =
        'production untouched, still on the old secrets; CI secrets hold the new values'
    }
    if (result.written.length > 0) {
      this.outcome.changed.push(
        `CI secrets set to the new values: ${this.outcome.updatedSecrets.map((s) => `${s.scope}/${s.name}`).join(', ')}`
      )
    }
    if (result.failed.length > 0) {
      this.outcome.result = 'failed'
      this.outcome.failure = `writing CI secrets failed: ${result.failed.map((f) => `${scopeLabel(f.scope)}/${f.name}: ${f.error}`).join('; ')}`
      core.error(this.outcome.failure)
      await this.compensate()
      return false
    }
    return true
  }

  // ------------------------------------------------------------ 4. host
  private newEnvText(): string | null {
    const state = this.hostState as HostState
    const keys = this.config.keys.map((k) => k.envKey)
    switch (this.hostMode) {
      case 'immediate':
        return setEnvValues(state.envText, this.newValues)
      case 'graceful':
        return setPreviousValues(setEnvValues(state.envText, this.newValues), state.oldValues)
      case 'retire-previous':
        return removeEnvKeys(
          state.envText,
          keys.map((k) => `${k}_PREVIOUS`)
        )
      case 'recover':
        return null
    }
  }

  private async runHost(): Promise<boolean> {
    const host = this.host as HostRotation
    const c = this.config
    const backupName = `${c.envFile}.backup.${backupStamp(this.outcome.rotatedAt)}`
    const newEnv = this.newEnvText()
    await host.launch(newEnv, backupName, () => HostSession.connect(c.ssh))
    this.outcome.changed.push(
      `host sequence started on ${c.ssh.host} (${hostSteps(c, this.hostMode).join(' → ')})`
    )
    core.info(`Host sequence started; following ${c.deployPath}/.rotation/journal`)
    const summary = await host.follow(
      (event) => this.logEvent(event),
      this.context.signal,
      () => HostSession.connect(c.ssh)
    )
    this.session = host.currentSession
    this.absorb(summary)
    if (this.context.signal.aborted && !summary.terminal) {
      const last = summary.steps.at(-1)
      this.outcome.result = 'failed'
      this.outcome.failure = 'the workflow was cancelled while the host sequence was running'
      this.outcome.stateNow = `the host sequence goes on by itself and will finish or roll back on its own (last step seen: ${last ? `${last.name} ${last.status}` : 'none'}); check ${c.deployPath}/.rotation/journal`
      this.outcome.mismatch = `The CI secrets hold the NEW values, and the host may still roll back to the old ones. Check the journal's last line on the host: if it ends in "rolled-back", re-run this rotation (it will generate fresh values everywhere).`
      core.warning(`${this.outcome.failure}: ${this.outcome.stateNow}`)
      return false
    }
    if (!summary.terminal) {
      this.outcome.result = 'failed'
      this.outcome.failure = `lost track of the host sequence: ${summary.followError ?? 'the journal ended without a result'}`
      this.outcome.stateNow = `unknown: the host sequence may still be running; check ${c.deployPath}/.rotation/journal and the services`
      this.outcome.mismatch =
        'CI secrets hold the new values; whether production does is unknown. Check the host journal, then re-run the rotation or run with recover: true.'
      return false
    }
    return this.interpretHostResult(summary)
  }

  private logEvent(event: JournalEvent): void {
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

  private absorb(summary: FollowResult): void {
    this.hostStartedAt = summary.steps[0]?.startedAt
    this.outcome.hostSteps = summary.steps.map((s): HostStep => ({
      name: s.name,
      status: s.status,
      seconds:
        s.endedAt !== undefined ? Math.round((s.endedAt - s.startedAt) / 100) / 10 : undefined,
      detail: s.detail
    }))
    this.outcome.hostResult = summary.result
    this.outcome.downtimeSeconds = summary.downtimeSeconds
    if (summary.services) this.outcome.restartedServices = summary.services
    if (summary.apiDowntimeSeconds !== undefined)
      this.outcome.apiDowntimeSeconds = summary.apiDowntimeSeconds
    const unexpected = (summary.services ?? []).filter((s) => !s.target).map((s) => s.service)
    if (unexpected.length > 0)
      core.warning(
        `compose also recreated ${unexpected.join(', ')}, which receive no rotated key (their configuration changed since they were started): they run on the current compose file now`
      )
    if (summary.backupPath) this.outcome.backupPath = summary.backupPath
    const revoke = summary.steps.find((s) => s.name === 'revoke' && s.status === 'ok')
    const rows = /rows=(\d+)/.exec(revoke?.detail ?? '')
    if (rows) this.outcome.revokedRows = Number(rows[1])
  }

  private interpretHostResult(summary: FollowResult): boolean {
    const c = this.config
    const where = `${c.deployPath}/${c.envFile}`
    switch (summary.result) {
      case 'success':
        this.outcome.result = 'success'
        this.outcome.changed.push(
          c.mode === 'retire-previous'
            ? `${where}: *_PREVIOUS lines removed; services recreated`
            : `${where}: ${c.keys.map((k) => k.envKey).join(', ')} replaced${c.mode === 'graceful' ? ' (old values kept as *_PREVIOUS)' : ''}; services restarted`
        )
        if (this.outcome.revokedRows !== undefined)
          this.outcome.changed.push(`${this.outcome.revokedRows} refresh token(s) revoked`)
        this.outcome.stateNow = 'production runs on the new secrets and answers its health check'
        if (c.mode === 'graceful') {
          const envText = (this.hostState as HostState).envText
          const lifetime = retireAfterMs({
            access: envValue(envText, 'JWT_EXPIRES_IN'),
            refresh: envValue(envText, 'JWT_REFRESH_EXPIRES_IN')
          })
          this.outcome.retireAfter = new Date(
            Date.parse(this.outcome.rotatedAt) + lifetime.ms
          ).toISOString()
          this.outcome.retireAfterReason = lifetime.why
        }
        return true
      case 'recovered':
        this.outcome.result = 'recovered'
        this.outcome.changed.push(
          summary.restoredFrom
            ? `${where}: restored from ${summary.restoredFrom}; services started`
            : `${where}: kept (the interrupted run died before its backup, so before changing it); services started`
        )
        this.outcome.stateNow = `production runs on the ${summary.restoredFrom ? 'restored' : 'kept'} .env and answers its health check`
        return true
      case 'aborted':
        this.outcome.result = 'failed'
        this.outcome.failure = `the host sequence stopped before changing anything (${summary.failedStep ?? '?'} failed${this.stepDetail(summary)})`
        this.outcome.stateNow = 'production untouched, still on the old secrets'
        return false
      case 'rolled-back':
        this.outcome.result = 'rolled-back'
        this.outcome.failure = `host step "${summary.failedStep ?? '?'}" failed${this.stepDetail(summary)}; the host rolled back`
        this.outcome.changed.push(
          `${where}: swapped, then restored from the backup; services restarted`
        )
        this.outcome.stateNow = 'production is back on the old secrets and answers its health check'
        if (summary.steps.some((s) => s.name === 'revoke' && s.status === 'ok')) {
          this.outcome.changed.push(
            'the refresh tokens were revoked before the failure: EVERY USER WAS LOGGED OUT and must sign in again (on the old secrets)'
          )
          this.outcome.stateNow += '; every user was logged out (their refresh tokens were revoked)'
        }
        return false
      default:
        this.outcome.result = 'failed'
        this.outcome.failure = `host step "${summary.failedStep ?? '?'}" failed${this.stepDetail(summary)} and the rollback failed too (${summary.result})`
        this.outcome.stateNow = `PRODUCTION MAY BE DOWN: the backup was ${summary.steps.some((s) => s.name === 'rollback-restore' && s.status === 'ok') ? 'restored' : 'NOT restored'} to ${where}, but the services did not come back healthy. Look at ${c.deployPath}/.rotation/host.log and run "${this.hostState?.composeCommand ?? 'docker compose'} -f ${c.composeFile} --env-file ${envFilePath(c)} up -d" by hand`
        this.outcome.changed.push(`${where}: swapped and rollback attempted`)
        return false
    }
  }

  private stepDetail(summary: FollowResult): string {
    const step = summary.steps.find((s) => s.name === summary.failedStep)
    return step?.detail ? ` (${step.detail})` : ''
  }

  // ------------------------------------------------------------ 5. compensate
  /** What the host's .env holds now, as far as this run knows. */
  private hostEnvState(): 'old' | 'new' | 'unknown' {
    if (this.host?.launchUnknown) return 'unknown'
    if (!this.host?.launched) return 'old'
    switch (this.outcome.hostResult) {
      case 'success':
        return 'new'
      case 'aborted':
      case 'rolled-back':
        return 'old'
      case undefined:
        return 'unknown'
      default:
        // rollback-failed: the .env is old again unless restoring it failed.
        return this.outcome.hostSteps.some(
          (s) => s.name === 'rollback-restore' && s.status === 'fail'
        )
          ? 'unknown'
          : 'old'
    }
  }

  /** Writes the old values back into every CI secret already set to a new one. */
  private async compensate(): Promise<void> {
    if (this.written.length === 0) return
    const c = this.config
    if (this.hostEnvState() !== 'old') {
      this.outcome.mismatch ??=
        'CI secrets hold the NEW values, and whether the host .env does is unknown. Check the host journal and .env, then re-run the rotation (or run with recover: true).'
      core.error(this.outcome.mismatch)
      return
    }
    const state = this.hostState as HostState
    const old: SecretWrite[] = this.written.map((w) => {
      const key = c.keys.find((k) => k.secretName === w.name)
      return {
        scope: w.scope,
        name: w.name,
        value: textOf(state.oldValues[key?.envKey ?? ''] ?? '')
      }
    })
    core.info(`Writing the old values back into ${old.length} CI secret(s)`)
    const result = await writeSecrets(
      this.octokit as Octokit,
      c.owner,
      c.repo,
      this.scopeKeys,
      old,
      {
        onWritten: (w) => core.info(`${scopeLabel(w.scope)}: ${w.name} restored to the old value`)
      }
    )
    this.outcome.restoredSecrets = result.written.map(ref)
    this.outcome.unrestoredSecrets = result.failed.map((f) => ({ ...ref(f), error: f.error }))
    const restored = new Set(this.outcome.restoredSecrets.map((s) => `${s.scope}/${s.name}`))
    this.outcome.updatedSecrets = this.outcome.updatedSecrets.filter(
      (s) => !restored.has(`${s.scope}/${s.name}`)
    )
    if (result.written.length > 0) {
      this.outcome.changed.push(
        `CI secrets written back to the old values: ${[...restored].join(', ')}`
      )
    }
    if (!this.host?.launched)
      this.outcome.stateNow = 'production untouched, still on the old secrets'
    if (result.failed.length > 0) {
      this.outcome.mismatch = `CI and production DISAGREE: ${this.outcome.unrestoredSecrets.map((s) => `${s.scope}/${s.name}`).join(', ')} still hold the new value while production runs on the old one. A deploy now would push a secret production does not use. Re-run this rotation, or set those secrets to the values in ${this.outcome.backupPath ?? `${c.deployPath}/${c.envFile}.backup`} by hand.`
      core.error(this.outcome.mismatch)
    } else {
      this.outcome.stateNow += '; CI secrets are back on the old values'
    }
  }

  /** After a recovery, CI secrets get the restored .env's values (an interrupted run may have changed them). */
  private async alignAfterRecovery(): Promise<void> {
    const c = this.config
    if (this.scopeKeys.length === 0) return
    const session = this.session as HostSession
    const text = (await session.readFile(`${c.deployPath}/${c.envFile}`)).toString('latin1')
    const values: Record<string, string> = {}
    for (const key of c.keys) {
      const raw = envValue(text, key.envKey)
      if (raw === undefined || raw === '') continue
      const value = textOf(raw)
      mask(value)
      values[key.envKey] = value
    }
    const writes = this.ciWrites(values).filter((w) => w.value !== undefined)
    const result = await writeSecrets(
      this.octokit as Octokit,
      c.owner,
      c.repo,
      this.scopeKeys,
      writes
    )
    this.outcome.restoredSecrets = result.written.map(ref)
    this.outcome.unrestoredSecrets = result.failed.map((f) => ({ ...ref(f), error: f.error }))
    if (result.written.length > 0) {
      this.outcome.changed.push(
        `CI secrets set to the restored .env's values: ${this.outcome.restoredSecrets.map((s) => `${s.scope}/${s.name}`).join(', ')}`
      )
    }
    if (result.failed.length > 0) {
      this.outcome.mismatch = `CI secrets ${this.outcome.unrestoredSecrets.map((s) => `${s.scope}/${s.name}`).join(', ')} could not be aligned with the restored .env: set them by hand or re-run`
    }
  }

  // ------------------------------------------------------------ 6. verify
  /**
   * Phase 6. Never fails the run: a check that cannot run is a failed check
   * (a warning and an unticked line), and `result` stays what the host did.
   */
  private async verify(): Promise<void> {
    await core.group('6. Verify', async () => {
      const state = this.hostState as HostState
      try {
        const { checks, session } = await verifyRotation(
          {
            config: this.config,
            session: this.session,
            composeCommand: state.composeCommand,
            hostStartedAt: this.hostStartedAt,
            secrets: [
              ...Object.values(this.newValues),
              ...Object.values(state.oldValues).map(textOf),
              ...(this.host?.redactionValues ?? [])
            ],
            mask
          },
          this.outcome.rotatedAt
        )
        if (session) this.session = session
        Object.assign(this.outcome, checks)
      } catch (error) {
        const reason = `verification could not run: ${describeError(error)}`
        this.outcome.health = { status: 'failed', reason }
      }
      const o = this.outcome
      core.info(`health: ${o.health?.status}${o.health?.reason ? ` (${o.health.reason})` : ''}`)
      for (const login of o.logins) {
        core.info(
          `${login.account} login: ${login.status}${login.reason ? ` (${login.reason})` : ''}`
        )
      }
      const scan = o.logScan
      if (scan) {
        core.info(
          `log scan since ${scan.since ?? '?'}: ${scan.status}, ${scan.total} line(s) match, ${scan.expected} expected (old tokens rejected), ${scan.configErrors} configuration error(s), ${scan.unexpected ?? 0} unexpected JWT error(s)`
        )
        for (const sample of scan.samples) core.info(`  ${sample}`)
      }
      o.verification = verificationOf(o)
      core.info(`verification: ${o.verification}`)
    })
  }

  private async releaseIfHeld(): Promise<void> {
    if (!this.host?.holdsLock) return
    try {
      await this.host.release()
      core.info('Host: lock released (the host sequence was not started)')
    } catch (error) {
      core.warning(
        `could not release the host lock ${this.config.deployPath}/.rotation/lock: ${describeError(error)}; remove it by hand`
      )
    }
  }

  /** The repository variable documenting the rotation date. */
  async setRotationDate(
    setVariable: (name: string, value: string) => Promise<unknown>
  ): Promise<void> {
    const name = this.config.rotationDateVariable
    const o = this.outcome
    if (name === '' || o.result !== 'success') {
      o.rotationDateVariable = {
        name,
        status: 'skipped',
        reason:
          name === ''
            ? 'rotation-date-variable is empty'
            : `the rotation did not succeed (${o.result})`
      }
      return
    }
    if (!this.rotatesSecrets) {
      o.rotationDateVariable = {
        name,
        status: 'skipped',
        reason: `mode ${this.config.mode} rotates no secret`
      }
      return
    }
    try {
      await setVariable(name, o.rotatedAt)
      o.rotationDateVariable = { name, status: 'set' }
    } catch (error) {
      o.rotationDateVariable = { name, status: 'failed', reason: describeError(error) }
    }
  }
}

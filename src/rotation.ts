// The rotation, phase by phase (DESIGN §1): preflight, generate, CI secrets,
// host, compensate, verify. Reporting is the caller's (main.ts).
import * as core from '@actions/core'
import { CiSecrets } from './ci-secrets.js'
import type { Config } from './config.js'
import { describeError } from './github/client.js'
import { envValue, removeEnvKeys, setEnvValues, setPreviousValues } from './host/dotenv.js'
import { backupStamp, type HostMode } from './host/plan.js'
import { HostRotation, textOf, type HostState, type RunIdentity } from './host/sequence.js'
import {
  absorbSummary,
  applyHostResult,
  hostEnvState,
  logJournalEvent
} from './host/host-outcome.js'
import { HostSession } from './host/ssh.js'
import { hostSteps, planLines } from './host/swarm-plan.js'
import type { Outcome } from './outcome.js'
import type { Progress } from './post/state.js'
import { runPreflight, type Preflighted } from './preflight.js'
import { generateSecret } from './secrets/generate.js'
import { verificationOf, verifyRotation } from './verify/run.js'

export interface RunContext {
  run: RunIdentity
  runUrl?: string
  actor: string
  signal: AbortSignal
  now?: () => Date
  /** Told each step that changes what the post step would have to finish (post/state.ts). */
  onProgress?: (progress: Progress) => void
}

function mask(value: string): void {
  if (value !== '') core.setSecret(value)
}

export class Rotation {
  readonly outcome: Outcome
  private ci: CiSecrets | undefined
  private session: HostSession | undefined
  private host: HostRotation | undefined
  private hostState: HostState | undefined
  private newValues: Record<string, string> = {}
  /** Host clock (ms) at the first step: the log scan's window starts there. */
  private hostStartedAt: number | undefined
  private readonly hostMode: HostMode
  /** Why sshd refuses forwarded channels, when it does (found in preflight). */
  private forwardingRefused: string | undefined

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
    // Filled as preflight goes, so that a refusal still releases the lock.
    const held: Preflighted = {}
    try {
      await runPreflight(this.config, this.outcome, this.context, this.hostMode, held)
    } finally {
      this.ci = held.ci
      this.session = held.session
      this.host = held.host
      this.hostState = held.hostState
      this.forwardingRefused = held.forwardingRefused
    }
  }

  private async dryRun(): Promise<void> {
    const c = this.config
    const state = this.hostState as HostState
    const plan: string[] = []
    if (this.rotatesSecrets) {
      plan.push(
        `generate ${c.keys.length} secret(s) of ${c.secretBytes} random bytes (base64): ${c.keys.map((k) => k.envKey).join(', ')}`
      )
      plan.push(...(this.ci as CiSecrets).planLines())
    }
    plan.push(...planLines(c, this.hostMode, state, this.outcome.rotatedAt))
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
  private async writeCiSecrets(): Promise<boolean> {
    if (await (this.ci as CiSecrets).writeNew(this.newValues)) return true
    await this.compensate()
    return false
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
    this.context.onProgress?.({ kind: 'host-launching', backupName })
    await host.launch(newEnv, backupName, () => HostSession.connect(c.ssh))
    this.context.onProgress?.({ kind: 'host-launched' })
    this.outcome.changed.push(
      `host sequence started on ${c.ssh.host} (${hostSteps(c, this.hostMode).join(' → ')})`
    )
    core.info(`Host sequence started; following ${c.deployPath}/.rotation/journal`)
    const summary = await host.follow(logJournalEvent, this.context.signal, () =>
      HostSession.connect(c.ssh)
    )
    this.session = host.currentSession
    this.hostStartedAt = summary.steps[0]?.startedAt
    absorbSummary(this.outcome, summary)
    this.context.onProgress?.({
      kind: 'host-done',
      hostResult: summary.terminal ? summary.result : undefined
    })
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
    return applyHostResult(this.outcome, c, summary, {
      envText: (this.hostState as HostState).envText,
      composeCommand: (this.hostState as HostState).composeCommand
    })
  }

  /** Undoes the CI writes when the host is known to be on the old values. */
  private async compensate(): Promise<void> {
    const ci = this.ci
    if (!ci?.attempted) return
    const c = this.config
    const old: Record<string, string> = {}
    for (const [k, v] of Object.entries(this.hostState?.oldValues ?? {})) old[k] = textOf(v)
    await ci.compensate(
      hostEnvState(this.outcome, this.host),
      old,
      this.outcome.backupPath ?? `${c.deployPath}/${c.envFile}.backup`
    )
    if (!this.host?.launched && !this.outcome.mismatch)
      this.outcome.stateNow =
        'production untouched, still on the old secrets; CI secrets are back on the old values'
  }

  /** After a recovery, CI secrets get the restored .env's values (an interrupted run may have changed them). */
  private async alignAfterRecovery(): Promise<void> {
    const c = this.config
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
    await (this.ci as CiSecrets).alignAfterRecovery(values)
  }

  // ------------------------------------------------------------ 6. verify
  /**
   * Phase 6. Never fails the run: a check that cannot run is a failed check
   * (a warning and an unticked line), and `result` stays what the host did.
   */
  private async verify(): Promise<void> {
    this.context.onProgress?.({ kind: 'verifying' })
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
            mask,
            forwardingRefused: this.forwardingRefused
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
      core.warning(
        `the rotation succeeded, but setting the repository variable ${name} failed: ${describeError(error)}; set it to ${o.rotatedAt} by hand`
      )
    }
  }
}

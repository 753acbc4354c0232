// The host half of a rotation: preflight and lock, staging, the detached
// sequence, and following its journal.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { Config } from '../config.js'
import { redactValues } from '../redact.js'
import { envValue, parseEnv } from './dotenv.js'
import {
  JournalReader,
  summarizeJournal,
  type JournalEvent,
  type JournalSummary
} from './journal.js'
import {
  chooseDetach,
  parsePreflight,
  type Detach,
  preflightProblems,
  renderAssignments,
  followDeadlineSeconds,
  stepTimeoutSeconds,
  type HostFacts,
  type HostMode
} from './plan.js'
import type { HostSession } from './ssh.js'
import { resolveTargets } from './resolve-targets.js'
import { trialRevoke } from './db-trial.js'
import { inspectSwarm } from './swarm-host.js'
import { hostSteps, parseSwarmFacts, stackEnv, swarmPreflightProblems } from './swarm.js'
import type { ServiceKeys } from './targets.js'

const scriptTexts: Partial<Record<'compose' | 'swarm', string>> = {}

/** The host-side script: src/host/rotate-host.sh, shipped as dist/rotate-host.sh. */
/** A value of the byte-per-character .env text as the app reads it (UTF-8). */
export function textOf(byteString: string): string {
  return Buffer.from(byteString, 'latin1').toString('utf8')
}

/** The 1-based number of the first line that is not valid UTF-8, if any. */
export function firstNonUtf8Line(bytes: Buffer): number | undefined {
  const decoder = new TextDecoder('utf-8', { fatal: true })
  let line = 1
  let start = 0
  for (let i = 0; i <= bytes.length; i++) {
    if (i === bytes.length || bytes[i] === 0x0a) {
      try {
        decoder.decode(bytes.subarray(start, i))
      } catch {
        return line
      }
      line += 1
      start = i + 1
    }
  }
  return undefined
}

/**
 * Which .env values host text is redacted with: every value of a secret-named
 * key, and every other value that is not a plain word or path. Plain names
 * ("cloudbox", "production", "/srv/app") would blank out paths and service
 * names in every message while hiding nothing.
 */
export function worthRedacting(key: string, value: string): boolean {
  if (value.length < REDACT_MIN_LENGTH) return false
  if (/SECRET|KEY|PASSWORD|PASS|TOKEN|DSN|AUTH|CREDENTIAL|PRIVATE/i.test(key)) return true
  return !/^[A-Za-z_./-]+$/.test(value)
}

/** Shorter .env values (ports, flags, "production") are not secrets worth hiding. */
const REDACT_MIN_LENGTH = 8

/** rotate-host.sh; with target swarm, its swarm part first (function definitions only, called under TARGET=swarm). */
export function hostScript(target: 'compose' | 'swarm' = 'compose'): string {
  const read = (name: string): string => readFileSync(new URL(name, import.meta.url), 'utf8')
  scriptTexts[target] ??=
    target === 'swarm'
      ? '#!/bin/sh\n' + read('./rotate-host-swarm.sh') + read('./rotate-host.sh')
      : read('./rotate-host.sh')
  return scriptTexts[target] as string
}

export class HostPreflightError extends Error {
  constructor(
    readonly problems: string[],
    readonly facts?: HostFacts
  ) {
    super(problems.length === 1 ? problems[0] : problems.map((p) => `- ${p}`).join('\n'))
    this.name = 'HostPreflightError'
  }
}

export interface HostState {
  facts: HostFacts
  composeCommand: string
  detach: Detach
  envText: string
  envSha256: string
  /** Old values of the rotated keys, as .env holds them (masked by the caller). */
  oldValues: Record<string, string>
  postgresUser: string
  postgresDb: string
  /** Absolute path of the .env file. */
  envPath: string
  /** Services that receive a rotated key (restart: targeted stops and recreates only these). */
  targets: ServiceKeys[]
  /** target swarm: the variables the stack file uses (staged for docker stack deploy). */
  stackVariables?: string[]
}

export type FollowResult = JournalSummary & { followError?: string }

export interface RunIdentity {
  id: string
  by: string
}

export class HostRotation {
  /** Every value of the host's .env (old and new), to redact host text with. */
  private envValues: string[] = []
  private lockTaken = false
  private launchedFlag = false
  private launchUnknownFlag = false
  private state: HostState | undefined

  constructor(
    private session: HostSession,
    private readonly config: Config,
    private readonly run: RunIdentity,
    private readonly mode: HostMode
  ) {}

  /** Text from the host (compose errors, stderr, journal details) made safe to report. */
  redactHost(text: string): string {
    return redactValues(text, this.envValues)
  }

  get redactionValues(): string[] {
    return [...this.envValues]
  }

  private rememberEnvValues(envText: string): void {
    const values = parseEnv(envText)
      .filter((e) => worthRedacting(e.key, e.value))
      .flatMap((e) => [e.value, textOf(e.value)])
    this.envValues = [...new Set([...this.envValues, ...values])]
  }

  get launched(): boolean {
    return this.launchedFlag
  }

  /** The answer to launch was lost and the host could not say whether the sequence started. */
  get launchUnknown(): boolean {
    return this.launchUnknownFlag
  }

  get holdsLock(): boolean {
    return this.lockTaken && !this.launchedFlag && !this.launchUnknownFlag
  }

  private base(): Record<string, string | number> {
    const c = this.config
    return {
      DEPLOY_DIR: c.deployPath,
      COMPOSE_FILE: c.composeFile,
      ENV_FILE: c.envFile,
      COMPOSE_CMD: this.state?.composeCommand ?? c.composeCommand ?? 'auto',
      STEP_TIMEOUT: stepTimeoutSeconds(c),
      RUN_ID: this.run.id,
      RUN_BY: this.run.by,
      ...(c.target === 'swarm' ? { TARGET: 'swarm', STACK: c.stackName } : {})
    }
  }

  private async script(
    command: string,
    extra: Record<string, string | number> = {}
  ): Promise<string> {
    const stdin = renderAssignments({ ...this.base(), ...extra }) + hostScript(this.config.target)
    const result = await this.session.exec(`sh -s ${command}`, { stdin })
    if (result.code !== 0) {
      throw new Error(
        `host script "${command}" failed (exit ${result.code ?? `signal ${result.signal ?? 'unknown'}`}): ${this.redactHost(result.stderr.trim()).slice(0, 500)}`
      )
    }
    return result.stdout
  }

  /**
   * Checks everything on the host and takes the lock. Throws
   * HostPreflightError with every problem found; releases the lock it took
   * when a later check fails.
   */
  async preflight(rotatedKeys: string[], mask: (value: string) => void): Promise<HostState> {
    const out = await this.script('preflight', { RECOVER: this.mode === 'recover' ? 1 : 0 })
    const facts = parsePreflight(out)
    const problems =
      this.config.target === 'swarm'
        ? swarmPreflightProblems(facts, parseSwarmFacts(out), this.config)
        : preflightProblems(facts, this.config, this.mode === 'recover')
    if (facts.lock === 'taken') this.lockTaken = true
    try {
      // The .env checks say more than "compose config failed" (an empty
      // ENCRYPTION_KEY breaks both): they come first.
      const inspected =
        facts.envFile === 'ok' ? await this.inspect(facts, rotatedKeys, mask, out) : undefined
      const all = [...(inspected?.problems ?? []), ...problems]
      if (all.length > 0 || inspected === undefined)
        throw new HostPreflightError(
          all.map((p) => this.redactHost(p)),
          facts
        )
      if (!this.lockTaken) throw new HostPreflightError(['the rotation lock was not taken'], facts)
      this.state = inspected.state
      return this.state
    } catch (error) {
      await this.release()
      throw error
    }
  }

  private async inspect(
    facts: HostFacts,
    rotatedKeys: string[],
    mask: (value: string) => void,
    preflightOut: string
  ): Promise<{ problems: string[]; state: HostState }> {
    const c = this.config
    const envPath = `${c.deployPath}/${c.envFile}`
    const envBuffer = await this.session.readFile(envPath)
    // One character per byte: the rewrite then keeps every byte it does not
    // replace, whatever the encoding (a Latin-1 comment or password, a BOM).
    const envText = envBuffer.toString('latin1')
    this.rememberEnvValues(envText)
    // Mask every value before anything else can print it.
    for (const entry of parseEnv(envText)) {
      if (entry.value.length >= 4 && /SECRET|KEY|PASSWORD|PASS|TOKEN/i.test(entry.key)) {
        mask(entry.value)
        mask(textOf(entry.value))
      }
    }
    const problems: string[] = []
    const badLine = firstNonUtf8Line(envBuffer)
    if (badLine !== undefined && facts.composeConfigError !== undefined) {
      problems.push(
        `${envPath} line ${badLine} is not valid UTF-8 (a Latin-1 character?) and the compose CLI cannot load the project: docker-compose 1.29 cannot read such a file. Convert it to UTF-8 (iconv -f latin1 -t utf-8), then rotate; the rotation itself keeps every byte`
      )
    }
    const oldValues: Record<string, string> = {}
    if (this.mode !== 'recover') {
      for (const key of rotatedKeys) {
        const value = envValue(envText, key)
        if (value === undefined)
          problems.push(`${envPath} has no ${key}= line (keys: ${rotatedKeys.join(', ')})`)
        else {
          mask(value)
          mask(textOf(value))
          oldValues[key] = value
        }
      }
    }
    const encryptionKey = envValue(envText, 'ENCRYPTION_KEY')
    if (encryptionKey === undefined || encryptionKey.trim() === '') {
      problems.push(
        `${envPath} has no non-empty ENCRYPTION_KEY: CloudBox then encrypts 2FA secrets and the SMTP password with JWT_SECRET, so rotating it would make that data unreadable. Set ENCRYPTION_KEY first (it needs data re-encryption), then rotate`
      )
    }
    let targets: ServiceKeys[] = []
    if (
      this.mode !== 'recover' &&
      facts.lock === 'taken' &&
      facts.composeFile === 'ok' &&
      facts.composeCmd !== undefined &&
      facts.composeCmd !== 'none' &&
      facts.composeConfigError === undefined
    ) {
      const resolved = await resolveTargets(
        this.session,
        c,
        envText,
        rotatedKeys,
        (command, extra) =>
          this.script(command, { COMPOSE_CMD: facts.composeCmd as string, ...extra })
      )
      problems.push(...resolved.problems)
      targets = resolved.targets
    }
    let database: { user: string; db: string } | undefined
    if (
      this.mode === 'immediate' &&
      facts.lock === 'taken' &&
      facts.composeCmd !== undefined &&
      facts.composeCmd !== 'none' &&
      facts.composeConfigError === undefined
    ) {
      const check = await trialRevoke(
        this.session,
        c,
        {
          script: (command, extra) => this.script(command, extra),
          command: 'dbcheck',
          extra: { COMPOSE_CMD: facts.composeCmd },
          where: `service ${c.postgresService}`
        },
        (text) => this.redactHost(text)
      )
      problems.push(...check.problems)
      database = check.database
    }
    let stackVariables: string[] | undefined
    const swarm = parseSwarmFacts(preflightOut)
    if (c.target === 'swarm' && facts.lock === 'taken' && swarm.node === 'active true') {
      const inspected = await inspectSwarm(
        this.session,
        c,
        swarm,
        rotatedKeys,
        this.mode,
        (command, extra) => this.script(command, extra),
        (text) => this.redactHost(text)
      )
      problems.push(...inspected.problems)
      targets = inspected.targets
      database = inspected.database
      stackVariables = inspected.variables
    }
    if (this.mode === 'retire-previous') {
      const present = rotatedKeys.filter(
        (key) => envValue(envText, `${key}_PREVIOUS`) !== undefined
      )
      if (present.length === 0) {
        problems.push(
          `nothing to retire: ${envPath} has no ${rotatedKeys.map((k) => `${k}_PREVIOUS`).join(' or ')} line`
        )
      }
    }
    const postgresUser =
      database?.user || c.postgresUser || envValue(envText, 'POSTGRES_USER') || 'cloudbox'
    const postgresDb =
      database?.db || c.postgresDb || envValue(envText, 'POSTGRES_DB') || postgresUser
    const state: HostState = {
      facts,
      composeCommand: c.target === 'swarm' ? 'docker' : (facts.composeCmd as string),
      detach: (() => {
        const choice = chooseDetach(facts)
        return 'detach' in choice ? choice.detach : 'setsid'
      })(),
      envText,
      envSha256: createHash('sha256').update(envBuffer).digest('hex'),
      oldValues,
      postgresUser,
      postgresDb,
      envPath,
      targets,
      ...(stackVariables ? { stackVariables } : {})
    }
    return { problems, state }
  }

  /** Releases the lock when this run holds it and has not started the sequence. */
  async release(): Promise<void> {
    if (!this.lockTaken || this.launchedFlag) return
    await this.script('release')
    this.lockTaken = false
  }

  /**
   * Stages the new .env (0600, SFTP, never a command line) and the
   * parameters, then starts the sequence detached from this SSH session.
   */
  async launch(
    newEnvText: string | null,
    backupPath: string,
    reconnect: () => Promise<HostSession>
  ): Promise<void> {
    const state = this.state
    if (!state) throw new Error('launch before preflight')
    const c = this.config
    if (newEnvText !== null) this.rememberEnvValues(newEnvText)
    const rotationDir = `${c.deployPath}/.rotation`
    const params = renderAssignments({
      ...this.base(),
      POSTGRES_SERVICE: c.postgresService,
      POSTGRES_USER: state.postgresUser,
      POSTGRES_DB: state.postgresDb,
      HEALTH_URL: c.healthUrl,
      HEALTH_TIMEOUT: c.healthTimeoutSeconds,
      HTTP_CLIENT: state.facts.httpClient ?? 'curl',
      STEPS: hostSteps(c, this.mode).join(' '),
      MODE: this.mode,
      RESTART: c.restart,
      TARGETS: state.targets.map((t) => t.service).join(' '),
      HEALTH_INTERVAL: '0.1',
      BACKUP_PATH: backupPath,
      REDACT_KEYS: this.config.keys.flatMap((k) => [k.envKey, `${k.envKey}_PREVIOUS`]).join(' '),
      BACKUP_RETENTION: c.backupRetention,
      ENV_SHA256: state.envSha256,
      ENV_MODE: state.facts.envMode ?? '600',
      ENV_OWNER: state.facts.envOwner ?? '',
      ENV_REAL_EXPECTED: state.facts.envReal ?? '',
      DETACH: state.detach
    })
    const files: Array<{ path: string; data: string | Buffer; mode: number }> = [
      { path: `${rotationDir}/rotate-host.sh`, data: hostScript(this.config.target), mode: 0o700 },
      { path: `${rotationDir}/params`, data: params, mode: 0o600 },
      { path: `${rotationDir}/revoke.sql`, data: `${c.revokeSql}\n`, mode: 0o600 }
    ]
    if (newEnvText !== null)
      files.push({
        path: `${rotationDir}/env.new`,
        data: Buffer.from(newEnvText, 'latin1'),
        mode: 0o600
      })
    if (c.target === 'swarm' && newEnvText !== null) {
      // What docker stack deploy reads its values from (never its arguments).
      const variables = state.stackVariables ?? []
      for (const [name, text] of [
        ['stack.env.new', newEnvText],
        ['stack.env.old', state.envText]
      ])
        files.push({
          path: `${rotationDir}/${name}`,
          data: Buffer.from(stackEnv(text, variables), 'latin1'),
          mode: 0o600
        })
    }
    await this.session.writeFiles(files)
    let out: string
    try {
      out = await this.script('launch', { DETACH: state.detach })
      if (!/^launched=(setsid|systemd-run)$/m.test(out)) {
        throw new Error(
          `the host sequence did not start: ${this.redactHost(out.trim()) || 'no answer'}`
        )
      }
    } catch (error) {
      // The answer is lost or negative: ask the host what really happened.
      const message = (error as Error).message
      const status = await this.launchStatus(reconnect)
      if (status === 'started') {
        this.launchedFlag = true
        return
      }
      if (status === 'not-started') {
        this.lockTaken = false
        throw new Error(
          `${message}; the host confirms the sequence did not start and can no longer start (fenced, lock released): production was not touched`
        )
      }
      this.launchUnknownFlag = true
      throw new Error(
        `${message}; whether the host sequence started is UNKNOWN (the host could not be asked): production may be rotating on its own, the lock stays`
      )
    }
    this.launchedFlag = true
  }

  /** One `status` question after a lost launch answer: started, not-started or unknown. */
  private async launchStatus(
    reconnect: () => Promise<HostSession>
  ): Promise<'started' | 'not-started' | 'unknown'> {
    try {
      if (!this.session.isConnected) this.session = await reconnect()
      const answer = /^status=(started|not-started|unknown)$/m.exec(await this.script('status'))
      return (answer?.[1] as 'started' | 'not-started' | 'unknown' | undefined) ?? 'unknown'
    } catch {
      return 'unknown'
    }
  }

  /**
   * Follows the journal until the sequence ends. Reconnects when the
   * connection drops; returns early (not terminal) when `signal` aborts.
   */
  async follow(
    onEvent: (event: JournalEvent) => void,
    signal: AbortSignal,
    reconnect: () => Promise<HostSession>
  ): Promise<FollowResult> {
    const events: JournalEvent[] = []
    const reader = new JournalReader()
    const limitSeconds = followDeadlineSeconds(
      this.config,
      hostSteps(this.config, this.mode).length
    )
    const deadline = Date.now() + limitSeconds * 1000
    let attempts = 0
    for (;;) {
      if (signal.aborted) break
      if (Date.now() > deadline) {
        return {
          ...summarizeJournal(events),
          followError: `the host sequence gave no result within ${limitSeconds} s (every step at its timeout): its state is unknown`
        }
      }
      try {
        if (!this.session.isConnected) this.session = await reconnect()
        reader.resume()
        const result = await this.session.exec('sh -s follow', {
          stdin:
            renderAssignments({ ...this.base(), FROM_LINE: reader.lines }) +
            hostScript(this.config.target),
          // The overall deadline also ends a follower that is still waiting.
          signal: AbortSignal.any([
            signal,
            AbortSignal.timeout(Math.max(1, deadline - Date.now()))
          ]),
          onStdout: (chunk) => {
            for (const raw of reader.push(chunk)) {
              const event =
                raw.detail === undefined ? raw : { ...raw, detail: this.redactHost(raw.detail) }
              events.push(event)
              onEvent(event)
            }
          }
        })
        const start = events.find((e) => e.event === 'run-start')
        if (
          start !== undefined &&
          !(start.detail ?? '').split(' ').includes(`run=${this.run.id}`)
        ) {
          return {
            ...summarizeJournal([]),
            followError: `the host journal belongs to another run (${start.detail ?? 'no run id'}), not to ${this.run.id}: this run's state is unknown`
          }
        }
        const summary = summarizeJournal(events)
        if (summary.terminal || signal.aborted) break
        // Not terminal: a lost connection or a follower that stopped; retry with backoff.
        throw new Error(
          `journal follower stopped: ${result.stderr.trim() || `exit ${result.code ?? 'none (connection lost)'}`}`
        )
      } catch (error) {
        if (signal.aborted) break
        if (Date.now() > deadline) continue
        attempts += 1
        if (
          attempts > 20 ||
          /did not start|ended without a result/.test((error as Error).message)
        ) {
          return { ...summarizeJournal(events), followError: (error as Error).message }
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(500 * attempts, 5000)))
      }
    }
    return summarizeJournal(events)
  }

  get currentSession(): HostSession {
    return this.session
  }
}

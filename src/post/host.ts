// The post step's host half: ask the host whether this run's sequence
// started (fencing it off for good when it had not, which also releases the
// lock this run took), follow its journal to the end, and re-read the old
// values from a file whose SHA-256 is the one preflight recorded.
import { createHash } from 'node:crypto'
import type { Config } from '../config.js'
import type { JournalEvent } from '../host/journal.js'
import { envValue } from '../host/dotenv.js'
import { renderAssignments, stepTimeoutSeconds } from '../host/plan.js'
import { HostRotation, hostScript, textOf, type FollowResult } from '../host/sequence.js'
import { HostSession } from '../host/ssh.js'
import type { HostMode } from '../host/plan.js'

export type HostEnd =
  /** This run's sequence never started (now fenced off): the host is untouched. */
  | { kind: 'not-started' }
  /** The sequence ran; `summary.terminal` says whether its end was seen. */
  | { kind: 'followed'; summary: FollowResult }
  /** The host could not be asked, or could not say. */
  | { kind: 'unknown'; why: string }

export interface HostLink {
  end: HostEnd
  session?: HostSession
}

/** Runs `rotate-host.sh status` for this run id: started, not-started or unknown. */
async function status(session: HostSession, config: Config, runId: string): Promise<string> {
  const stdin =
    renderAssignments({
      DEPLOY_DIR: config.deployPath,
      COMPOSE_FILE: config.composeFile,
      ENV_FILE: config.envFile,
      COMPOSE_CMD: config.composeCommand ?? 'auto',
      STEP_TIMEOUT: stepTimeoutSeconds(config),
      RUN_ID: runId,
      RUN_BY: 'post'
    }) + hostScript()
  const result = await session.exec('sh -s status', { stdin })
  const answer = /^status=(started|not-started|unknown)$/m.exec(result.stdout)
  if (result.code !== 0 || !answer) {
    return 'unknown'
  }
  return answer[1]
}

/** Connects, asks and follows. Never throws: what it cannot learn is `unknown`. */
export async function followHost(
  config: Config,
  run: { id: string; by: string },
  onEvent: (event: JournalEvent) => void,
  signal: AbortSignal
): Promise<HostLink> {
  let session: HostSession
  try {
    session = await HostSession.connect(config.ssh)
  } catch (error) {
    return {
      end: { kind: 'unknown', why: `could not connect over SSH: ${(error as Error).message}` }
    }
  }
  let answer: string
  try {
    answer = await status(session, config, run.id)
  } catch (error) {
    return {
      session,
      end: { kind: 'unknown', why: `could not ask the host: ${(error as Error).message}` }
    }
  }
  if (answer === 'not-started') return { session, end: { kind: 'not-started' } }
  if (answer !== 'started') {
    return {
      session,
      end: { kind: 'unknown', why: 'the host could not say whether the sequence started' }
    }
  }
  const mode: HostMode = config.recover ? 'recover' : config.mode
  const host = new HostRotation(session, config, run, mode)
  const summary = await host.follow(onEvent, signal, () => HostSession.connect(config.ssh))
  return { session: host.currentSession, end: { kind: 'followed', summary } }
}

/**
 * The pre-rotation values of the rotated keys, read over SSH from the first of
 * `paths` whose SHA-256 equals the one preflight recorded (the backup, then
 * the .env itself). Undefined when none matches: then nothing is known.
 */
export async function readOldValues(
  session: HostSession,
  paths: string[],
  envSha256: string,
  keys: string[]
): Promise<{ values: Record<string, string>; from: string } | { values?: undefined; why: string }> {
  const seen: string[] = []
  for (const path of paths) {
    let bytes: Buffer
    try {
      bytes = await session.readFile(path)
    } catch (error) {
      seen.push(`${path}: ${(error as Error).message}`)
      continue
    }
    if (createHash('sha256').update(bytes).digest('hex') !== envSha256) {
      seen.push(`${path}: not the .env preflight read (SHA-256 differs)`)
      continue
    }
    const text = bytes.toString('latin1')
    const values: Record<string, string> = {}
    for (const key of keys) {
      const raw = envValue(text, key)
      if (raw === undefined) return { why: `${path} has no ${key}= line` }
      values[key] = textOf(raw)
    }
    return { values, from: path }
  }
  return { why: seen.join('; ') || 'no file to read' }
}

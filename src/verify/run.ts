// Phase 6: health, the two login checks and the log scan. Each check fails on
// its own and says why; nothing here can change what the rotation did.
import * as core from '@actions/core'
import type { Config } from '../config.js'
import { envFilePath, shellQuote } from '../host/plan.js'
import { HostSession } from '../host/ssh.js'
import type { LoginCheck, Outcome } from '../outcome.js'
import { checkLogin } from './login.js'
import { composeStyleLogs, swarmLogsCommand } from '../host/swarm.js'
import { scanCommandLogs, scanServiceLogs } from './logs.js'
import { requestThroughTunnel } from './tunnel-http.js'

export interface VerifyInput {
  config: Config
  /** The session the host phase used; a fresh one is opened when it dropped. */
  session: HostSession | undefined
  composeCommand: string
  /** Host clock (ms) when the host sequence began: the log scan starts there. */
  hostStartedAt: number | undefined
  /** Values to redact from log samples. */
  secrets: string[]
  mask: (value: string) => void
  /** Preflight found sshd refusing forwarded channels: the checks through one are skipped. */
  forwardingRefused?: string
}

export type VerifyChecks = Pick<Outcome, 'health' | 'logins' | 'logScan'>

/** Runs every check; returns their results and the session it used (if any). */
export async function verifyRotation(
  input: VerifyInput,
  rotatedAt: string
): Promise<{ checks: VerifyChecks; session?: HostSession }> {
  const c = input.config
  let session = input.session
  try {
    if (!session?.isConnected) session = await HostSession.connect(c.ssh)
  } catch (error) {
    const reason = `could not reconnect over SSH to verify: ${(error as Error).message}`
    return {
      checks: {
        health: { status: 'failed', reason },
        logins: [
          { account: 'admin', status: 'failed', reason },
          { account: 'user', status: 'failed', reason }
        ],
        logScan: {
          status: 'failed',
          total: 0,
          expected: 0,
          configErrors: 0,
          samples: [],
          reason
        }
      }
    }
  }
  const live = session
  const refused = input.forwardingRefused
  const health = refused
    ? { status: 'skipped' as const, reason: `${refused} (the host's own health step passed)` }
    : await attempt(
        async () => {
          const answer = await requestThroughTunnel(live, c.healthUrl)
          return answer.status >= 200 && answer.status < 300
            ? { status: 'verified' as const }
            : { status: 'failed' as const, reason: `${c.healthUrl} answered HTTP ${answer.status}` }
        },
        (reason) => ({ status: 'failed' as const, reason })
      )
  const logins: LoginCheck[] = []
  for (const [account, credentials, checkUrl] of [
    ['admin', c.adminCredentials, c.adminCheckUrl],
    ['user', c.userCredentials, c.userCheckUrl]
  ] as const) {
    if (refused && credentials) {
      logins.push({ account, status: 'skipped', reason: refused })
      continue
    }
    logins.push(
      await attempt(
        () => checkLogin(live, account, credentials, c.loginUrl, checkUrl, input.mask),
        (reason) => ({ account, status: 'failed', reason })
      )
    )
  }
  // The host's own clock: container log stamps are the host's, not the runner's.
  const since =
    input.hostStartedAt !== undefined ? new Date(input.hostStartedAt).toISOString() : rotatedAt
  const logScan = await (c.target === 'swarm'
    ? scanCommandLogs(
        live,
        swarmLogsCommand(c.stackName),
        'docker service logs',
        since,
        c.jwtErrorPattern,
        input.secrets,
        composeStyleLogs
      )
    : scanServiceLogs(
        live,
        c.deployPath,
        input.composeCommand.split(' ').map(shellQuote).join(' '),
        ['-f', c.composeFile, '--env-file', envFilePath(c)],
        since,
        c.jwtErrorPattern,
        input.secrets
      ))
  return { checks: { health, logins, logScan }, session: live }
}

async function attempt<T>(check: () => Promise<T>, failed: (reason: string) => T): Promise<T> {
  try {
    return await check()
  } catch (error) {
    return failed((error as Error).message)
  }
}

/** passed, failed or skipped, with a warning annotation per failed check. */
export function verificationOf(checks: VerifyChecks): 'passed' | 'failed' | 'skipped' {
  const failures: string[] = []
  if (checks.health?.status === 'failed') failures.push(`health: ${checks.health.reason ?? ''}`)
  for (const login of checks.logins ?? []) {
    if (login.status === 'failed') failures.push(`${login.account} login: ${login.reason ?? ''}`)
  }
  const scan = checks.logScan
  if (scan && !['clean', 'expected-only', 'skipped'].includes(scan.status)) {
    failures.push(`log scan: ${scan.status}${scan.reason ? ` (${scan.reason})` : ''}`)
  }
  for (const failure of failures) core.warning(`verification failed: ${failure}`)
  if (failures.length > 0) return 'failed'
  return checks.health?.status === 'verified' ? 'passed' : 'skipped'
}

// "Check error logs for JWT-related errors": every service's log since the
// rotation began, scanned on the runner (docker-compose 1.29 has no
// `logs --since`, so lines are filtered by their --timestamps stamp).
import type { LogScanResult } from '../outcome.js'
import { shellQuote } from '../host/plan.js'
import type { HostSession } from '../host/ssh.js'
import { scanLogs } from './logscan.js'

const STAMPED = /^(.*?\|\s)?(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z)\s?(.*)$/

/** Keeps the lines stamped at or after `since`; drops the stamp. */
export function linesSince(logs: string, since: string): string {
  const start = Date.parse(since)
  const kept: string[] = []
  for (const line of logs.split('\n')) {
    const match = STAMPED.exec(line)
    if (!match) {
      if (line.trim() !== '') kept.push(line)
      continue
    }
    // Compare at millisecond precision: Date.parse drops the nanoseconds.
    const stamp = Date.parse(match[2].replace(/(\.\d{3})\d*Z$/, '$1Z'))
    if (Number.isNaN(stamp) || stamp >= start - 1) kept.push(`${match[1] ?? ''}${match[3]}`)
  }
  return kept.join('\n')
}

export async function scanServiceLogs(
  session: HostSession,
  deployPath: string,
  composeCommand: string,
  composeArgs: string[],
  since: string,
  pattern: RegExp,
  secrets: string[]
): Promise<LogScanResult> {
  const command = `cd ${shellQuote(deployPath)} && ${composeCommand} ${composeArgs.map(shellQuote).join(' ')} logs --no-color --timestamps --tail 5000`
  return scanCommandLogs(session, command, 'compose logs', since, pattern, secrets)
}

/** Scans what a host command prints (compose-style "<service> | <stamp> <line>" lines). */
export async function scanCommandLogs(
  session: HostSession,
  command: string,
  label: string,
  since: string,
  pattern: RegExp,
  secrets: string[],
  normalize: (text: string) => string = (text) => text
): Promise<LogScanResult> {
  const failed = (reason: string): LogScanResult => ({
    status: 'failed',
    total: 0,
    expected: 0,
    configErrors: 0,
    samples: [],
    since,
    reason
  })
  try {
    const result = await session.exec(command)
    if (result.code !== 0) {
      return failed(`${label} failed (exit ${result.code ?? 'none'})`)
    }
    const scan = scanLogs(linesSince(normalize(result.stdout), since), pattern, secrets)
    return {
      status: scan.verdict,
      total: scan.total,
      expected: scan.expected,
      configErrors: scan.configErrors,
      unexpected: scan.unexpected,
      samples: scan.samples,
      since
    }
  } catch (error) {
    return failed(`could not read the logs: ${(error as Error).message}`)
  }
}

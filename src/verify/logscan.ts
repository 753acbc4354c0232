// Scan of the services' logs after a rotation (pure).
//
// Every non-empty line is classified:
//
// - config error (checked on ALL lines, whether or not they match `pattern`):
//   the app or compose saying a secret is missing, empty, too short or a
//   placeholder, jsonwebtoken's `secretOrPrivateKey must have a value` /
//   `secret or public key must be provided`, compose's `required variable …
//   is missing a value`, a container `exited with code N` (N ≠ 0) or the app
//   `refusing to start`. These fail the check.
// - expected (only among lines matching `pattern`): what clients still holding
//   tokens signed with the old secret cause by design: `invalid signature`,
//   `jwt expired`, `jwt malformed`, `invalid token`, `TokenExpiredError`.
//   Counted and shown, never failed.
// - unexpected JWT errors (only among lines matching `pattern`): jsonwebtoken
//   errors an old token does not cause (`invalid algorithm`, `jwt audience
//   invalid`, `jwt issuer invalid`, `jwt not active`, ...): a misconfigured
//   verifier. Counted apart; never "clean".
// - other: lines matching `pattern` that are none of these. They are counted in
//   `total` (and `other`) and shown in samples, but do not change the verdict:
//   the default pattern (`jwt|jsonwebtoken|…`) also matches harmless lines such
//   as request logs of `/api/auth/refresh`.
//
// `total` counts the lines matching `pattern` (always case-insensitive).
// `samples`: up to 5 distinct lines, config errors first, then other, then
// expected ones; each redacted, stripped of ANSI colours and cut to 300
// characters. Compose's `service_1  | ` prefix is kept.
import { redact } from '../redact.js'

export interface LogScan {
  total: number
  expected: number
  configErrors: number
  /** JWT errors that are neither expected nor config errors. */
  unexpected: number
  /** Lines matching the pattern that are none of the above. */
  other: number
  samples: string[]
  verdict: 'clean' | 'expected-only' | 'config-errors' | 'unexpected-jwt-errors'
}

const MAX_SAMPLES = 5
const MAX_SAMPLE_LENGTH = 300

const EXPECTED = [
  /invalid signature/i,
  /jwt expired/i,
  /jwt malformed/i,
  /invalid token/i,
  /TokenExpiredError/
]

const UNEXPECTED_JWT_ERRORS = [
  /invalid algorithm/i,
  /jwt (?:audience|issuer|subject|id) invalid/i,
  /jwt not active/i,
  /NotBeforeTokenError/,
  /jwt signature is required/i,
  /invalid (?:jwt|token) (?:algorithm|audience|issuer)/i
]

const CONFIG_ERRORS = [
  /secretOrPrivateKey must have a value/i,
  /secret or public key must be provided/i,
  // CloudBox's own startup checks, e.g. "JWT_SECRET must be at least 32 characters"
  /\b(?:[A-Z0-9_]*(?:JWT|SECRET)[A-Z0-9_]*|ENCRYPTION_KEY)\b[^\n]{0,40}?\b(?:is required|must be (?:at least|set|provided|defined)|is (?:missing|empty|not set|not defined|too short)|(?:looks like|appears to be|is) a placeholder)/,
  /required variable \S+ is missing a value/i,
  /\bexited with code [1-9]\d*/i,
  /refus(?:ing|ed|es) to start/i
]

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g

function sample(line: string, secrets: string[]): string {
  const clean = redact(line.replace(ANSI, ''), secrets).trimEnd()
  return clean.length > MAX_SAMPLE_LENGTH ? `${clean.slice(0, MAX_SAMPLE_LENGTH - 1)}…` : clean
}

export function scanLogs(logText: string, pattern: RegExp, secrets: string[]): LogScan {
  // A fresh, stateless, case-insensitive copy: `g`/`y` would make test() stateful.
  const matcher = new RegExp(pattern.source, `${pattern.flags.replace(/[gyi]/g, '')}i`)
  const buckets = {
    config: [] as string[],
    unexpected: [] as string[],
    other: [] as string[],
    expected: [] as string[]
  }
  let total = 0
  for (const raw of logText.split(/\r?\n/)) {
    const line = raw.replace(ANSI, '')
    if (line.trim() === '') continue
    const matches = matcher.test(line)
    if (matches) total += 1
    if (CONFIG_ERRORS.some((re) => re.test(line))) buckets.config.push(raw)
    else if (matches && UNEXPECTED_JWT_ERRORS.some((re) => re.test(line)))
      buckets.unexpected.push(raw)
    else if (matches && EXPECTED.some((re) => re.test(line))) buckets.expected.push(raw)
    else if (matches) buckets.other.push(raw)
  }
  const samples: string[] = []
  for (const line of [
    ...buckets.config,
    ...buckets.unexpected,
    ...buckets.other,
    ...buckets.expected
  ]) {
    if (samples.length >= MAX_SAMPLES) break
    const s = sample(line, secrets)
    if (!samples.includes(s)) samples.push(s)
  }
  const configErrors = buckets.config.length
  const expected = buckets.expected.length
  return {
    total,
    expected,
    configErrors,
    unexpected: buckets.unexpected.length,
    other: buckets.other.length,
    samples,
    verdict:
      configErrors > 0
        ? 'config-errors'
        : buckets.unexpected.length > 0
          ? 'unexpected-jwt-errors'
          : expected > 0
            ? 'expected-only'
            : 'clean'
  }
}

import { describe, expect, it } from '@jest/globals'
import { randomBytes } from 'node:crypto'
import jwt from 'jsonwebtoken'
import { scanLogs } from '../../src/verify/logscan.js'

// The action's default jwt-error-pattern, as config.ts compiles it.
const PATTERN = /jwt|jsonwebtoken|invalid signature|secretOrPrivateKey/i

const oldToken = jwt.sign({ userId: 'u1', type: 'access' }, 'o'.repeat(48), { expiresIn: '15m' })

const AFTER_IMMEDIATE_ROTATION = [
  'postgres_1  | 2025-10-09 08:00:03.120 UTC [1] LOG:  database system is ready to accept connections',
  'backend_1   | [2025-10-09T08:00:06.001Z] INFO: Server listening on port 3001',
  'backend_1   | GET /api/health/ping 200 0.912 ms - 15',
  'backend_1   | [2025-10-09T08:00:07.311Z] WARN: Access token verification failed: JsonWebTokenError: invalid signature',
  'backend_1   |     at /app/node_modules/jsonwebtoken/verify.js:171:19',
  'backend_1   | GET /api/files 401 2.112 ms - 48',
  `backend_1   | [2025-10-09T08:00:08.014Z] WARN: Socket auth failed for token ${oldToken}: jwt malformed`,
  'backend_1   | POST /api/auth/refresh 401 3.214 ms - 52',
  'backend_1   | [2025-10-09T08:00:09.500Z] WARN: Refresh failed: TokenExpiredError: jwt expired',
  'worker_1    | [2025-10-09T08:00:10.000Z] WARN: WOPI token rejected: invalid token',
  'backend_1   | [2025-10-09T08:00:11.000Z] DEBUG: jwt verified for user 42',
  ''
].join('\n')

describe('scanLogs', () => {
  it('old tokens after an immediate rotation: expected only', () => {
    const scan = scanLogs(AFTER_IMMEDIATE_ROTATION, PATTERN, [])
    expect(scan).toMatchObject({
      // invalid signature, the stack line, jwt malformed, jwt expired, jwt verified
      total: 5,
      // invalid signature, jwt malformed, TokenExpiredError (the WOPI "invalid token" line does
      // not match the pattern, so it is not counted)
      expected: 3,
      configErrors: 0,
      other: 2,
      verdict: 'expected-only'
    })
    // other lines come before expected ones, the compose prefix is kept, the JWT is redacted
    expect(scan.samples[0]).toBe(
      'backend_1   |     at /app/node_modules/jsonwebtoken/verify.js:171:19'
    )
    expect(scan.samples).toContain(
      'backend_1   | [2025-10-09T08:00:08.014Z] WARN: Socket auth failed for token <jwt>: jwt malformed'
    )
    expect(scan.samples.join('\n')).not.toContain(oldToken)
    expect(scan.samples.length).toBeLessThanOrEqual(5)
  })

  it('clean logs', () => {
    const scan = scanLogs(
      'backend_1  | Server listening on port 3001\nbackend_1  | GET /api/health/ping 200\n',
      PATTERN,
      []
    )
    expect(scan).toEqual({
      total: 0,
      expected: 0,
      configErrors: 0,
      unexpected: 0,
      other: 0,
      samples: [],
      verdict: 'clean'
    })
  })

  it('an empty secret: jsonwebtoken refuses to sign', () => {
    const logs = [
      'backend_1  | [2025-10-09T08:00:07.311Z] WARN: invalid signature',
      'backend_1  | [2025-10-09T08:00:07.400Z] ERROR: Login failed: Error: secretOrPrivateKey must have a value',
      'backend_1  |     at module.exports [as sign] (/app/node_modules/jsonwebtoken/sign.js:111:20)',
      'backend_1  | POST /api/auth/login 500 5.1 ms - 60'
    ].join('\r\n')
    const scan = scanLogs(logs, PATTERN, [])
    expect(scan).toMatchObject({ total: 3, expected: 1, configErrors: 1, other: 1 })
    expect(scan.verdict).toBe('config-errors')
    expect(scan.samples[0]).toBe(
      'backend_1  | [2025-10-09T08:00:07.400Z] ERROR: Login failed: Error: secretOrPrivateKey must have a value'
    )
  })

  it('detects config errors on lines the pattern does not match', () => {
    const logs = [
      'backend_1  | Error: JWT_SECRET must be at least 32 characters in production',
      'backend_1  | Error: JWT_REFRESH_SECRET is required',
      'worker_1   | Refusing to start: JWT_SECRET looks like a placeholder',
      'cloudbox-backend exited with code 1',
      'cloudbox-init exited with code 0',
      'ERROR: required variable JWT_SECRET is missing a value: JWT_SECRET is required',
      'backend_1  | verify failed: secret or public key must be provided'
    ].join('\n')
    const narrow = /no-such-thing/i
    const scan = scanLogs(logs, narrow, [])
    expect(scan.total).toBe(0)
    expect(scan.configErrors).toBe(6)
    expect(scan.verdict).toBe('config-errors')
    expect(scan.samples).toHaveLength(5)
    expect(scan.samples).not.toContain('cloudbox-init exited with code 0')
  })

  it('redacts secrets and random material in samples and cuts them to 300 characters', () => {
    const secret = randomBytes(64).toString('base64')
    const logs = [
      `backend_1  | DEBUG jwt config: JWT_SECRET=${secret} is loaded`,
      `backend_1  | jwt ${'x'.repeat(400)}`,
      `backend_1  | jwt key ${randomBytes(40).toString('hex')}`
    ].join('\n')
    const scan = scanLogs(logs, PATTERN, [secret])
    expect(scan.samples[0]).toBe('backend_1  | DEBUG jwt config: JWT_SECRET=*** is loaded')
    expect(scan.samples[1]).toHaveLength(300)
    expect(scan.samples[2]).toBe('backend_1  | jwt key <redacted>')
    expect(scan.samples.join('\n')).not.toContain(secret)
  })

  it('strips ANSI colours, is case-insensitive and stateless with a /g pattern', () => {
    const logs = '\x1b[36mbackend_1  |\x1b[0m JWT EXPIRED\nbackend_1  | Jwt Expired\n'
    const scan = scanLogs(logs, /jwt/g, [])
    expect(scan).toMatchObject({ total: 2, expected: 2, verdict: 'expected-only' })
    expect(scan.samples).toEqual(['backend_1  | JWT EXPIRED', 'backend_1  | Jwt Expired'])
  })

  it('keeps at most 5 distinct samples, config errors first', () => {
    const lines = Array.from(
      { length: 20 },
      () => 'backend_1  | JsonWebTokenError: invalid signature'
    )
    lines.push('backend_1  | Error: JWT_SECRET is required')
    const scan = scanLogs(lines.join('\n'), PATTERN, [])
    expect(scan.expected).toBe(20)
    expect(scan.samples).toEqual([
      'backend_1  | Error: JWT_SECRET is required',
      'backend_1  | JsonWebTokenError: invalid signature'
    ])
  })
})

describe('unexpected JWT errors', () => {
  it('are counted apart and never clean', () => {
    const scan = scanLogs(
      [
        'backend_1  | JsonWebTokenError: invalid algorithm',
        'backend_1  | JsonWebTokenError: jwt audience invalid. expected: cloudbox',
        'backend_1  | JsonWebTokenError: invalid signature'
      ].join('\n'),
      /jwt|jsonwebtoken|invalid signature/i,
      []
    )
    expect(scan.unexpected).toBe(2)
    expect(scan.expected).toBe(1)
    expect(scan.verdict).toBe('unexpected-jwt-errors')
  })
})

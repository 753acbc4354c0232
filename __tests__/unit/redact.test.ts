import { describe, expect, it } from '@jest/globals'
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import jwt from 'jsonwebtoken'
import { redact } from '../../src/redact.js'

describe('redact', () => {
  it('replaces every occurrence of each secret', () => {
    const secret = randomBytes(64).toString('base64')
    const text = `JWT_SECRET=${secret}\nagain: ${secret}; end`
    expect(redact(text, [secret])).toBe('JWT_SECRET=***\nagain: ***; end')
  })

  it('replaces the URL-encoded form too', () => {
    const secret = 'ab+cd/ef==gh'
    expect(redact(`?k=${encodeURIComponent(secret)}&x=1`, [secret])).toBe('?k=***&x=1')
  })

  it('ignores secrets shorter than 8 characters and empty ones', () => {
    expect(redact('cloudbox user abc', ['abc', '', 'cloudbo'])).toBe('cloudbox user abc')
    expect(redact('password hunter22 here', ['hunter22'])).toBe('password *** here')
  })

  it('replaces the longest secret first', () => {
    expect(redact('x longsecret-suffix y', ['longsecret', 'longsecret-suffix'])).toBe('x *** y')
  })

  it('replaces JWTs with <jwt>', () => {
    const token = jwt.sign({ sub: 'u1', role: 'ADMIN' }, 'k'.repeat(40), { expiresIn: '15m' })
    expect(redact(`Authorization: Bearer ${token} ok`, [])).toBe('Authorization: Bearer <jwt> ok')
    expect(redact(`cookie refreshToken=${token}; Path=/api/auth`, [])).toBe(
      'cookie refreshToken=<jwt>; Path=/api/auth'
    )
  })

  it('replaces base64 and hex looking runs of 32+ characters', () => {
    const b64 = randomBytes(48).toString('base64')
    const hex = randomBytes(32).toString('hex')
    expect(redact(`key ${b64} and ${hex}.`, [])).toBe('key <redacted> and <redacted>.')
    expect(redact('tokenHash=' + 'a'.repeat(64), [])).toBe('tokenHash=<redacted>')
  })

  it('keeps ordinary log text readable', () => {
    const lines = [
      'backend_1  | JsonWebTokenError: invalid signature',
      'backend_1  |     at /usr/lib/node_modules/jsonwebtoken/verify.js:171:19',
      'backend_1  | POST /api/auth/refresh 401 3.214 ms - 52',
      'cloudbox-backend exited with code 1',
      'uuid 3f1c2a4e-8b7d-4c6e-9f00-123456789abc ok',
      'short base64 dGVzdA== stays'
    ]
    for (const line of lines) expect(redact(line, [])).toBe(line)
  })

  it('never leaves a generated secret in the output (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 256 }),
        fc.string({ maxLength: 40 }),
        fc.string({ maxLength: 40 }),
        (bytes, before, after) => {
          const secret = Buffer.from(bytes).toString('base64')
          const out = redact(`${before}${secret}${after}`, [secret])
          expect(out).not.toContain(secret)
        }
      )
    )
  })

  it('catches random base64 even when the secret list is empty', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 256 }), (bytes) => {
        const value = Buffer.from(bytes).toString('base64')
        // Random base64 without a digit and without both letter cases is vanishingly rare.
        fc.pre(/[0-9]/.test(value) || (/[a-z]/.test(value) && /[A-Z]/.test(value)))
        expect(redact(`secret: ${value}`, [])).toBe('secret: <redacted>')
      })
    )
  })
})

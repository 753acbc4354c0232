import { describe, expect, it } from '@jest/globals'
import { expiryWarning, parseTokenExpiry } from '../../src/github/token.js'

describe('token expiry', () => {
  it('reads the header in the forms GitHub sends', () => {
    expect(parseTokenExpiry('2026-12-05 09:12:00 UTC')?.toISOString()).toBe(
      '2026-12-05T09:12:00.000Z'
    )
    expect(parseTokenExpiry('2026-12-05 02:12:00 -0700')?.toISOString()).toBe(
      '2026-12-05T09:12:00.000Z'
    )
    expect(parseTokenExpiry(undefined)).toBeUndefined()
    expect(parseTokenExpiry('next tuesday')).toBeUndefined()
  })

  it('warns only when the worst case outlives the token', () => {
    const now = new Date('2026-12-05T08:00:00Z')
    const expires = new Date('2026-12-05T08:30:00Z')
    expect(expiryWarning(expires, now, 29 * 60)).toBeUndefined()
    expect(expiryWarning(expires, now, 46 * 60)).toMatch(
      /^secrets-token expires at 2026-12-05T08:30:00.000Z \(in 30 min\), before this run's worst case ends \(46 min/
    )
    expect(expiryWarning(undefined, now, 10 ** 6)).toBeUndefined()
  })
})

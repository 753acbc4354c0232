// The schedule guard: min-age-days parsing and the skip/rotate decision.
import { describe, expect, it } from '@jest/globals'
import { ConfigError } from '../../src/config.js'
import {
  readMinAgeDays,
  scheduleGuard,
  type GuardInput,
  type VariableRead
} from '../../src/schedule-guard.js'

const NOW = new Date('2027-01-15T03:00:00Z')

function input(overrides: Partial<GuardInput>, read?: VariableRead | Error): GuardInput {
  const reads: string[] = []
  return {
    eventName: 'schedule',
    minAgeDays: 30,
    variableName: 'JWT_SECRETS_ROTATED_AT',
    rotates: true,
    now: NOW,
    readVariable: async (name) => {
      reads.push(name)
      if (read instanceof Error) throw read
      return read ?? { status: 'missing' }
    },
    ...overrides
  }
}

describe('readMinAgeDays', () => {
  it('defaults to 30', () => {
    expect(readMinAgeDays(() => '')).toBe(30)
    expect(readMinAgeDays(() => '  ')).toBe(30)
  })

  it.each([
    ['0', 0],
    ['7', 7],
    [' 365 ', 365]
  ])('accepts %p', (raw, value) => {
    expect(readMinAgeDays(() => raw)).toBe(value)
  })

  it.each(['-1', '1.5', 'abc', '30d', '1e3', '999999999999999999999'])(
    'refuses %p naming the input',
    (raw) => {
      let caught: unknown
      try {
        readMinAgeDays((name) => (name === 'min-age-days' ? raw : ''))
      } catch (error) {
        caught = error
      }
      expect(caught).toBeInstanceOf(ConfigError)
      expect((caught as ConfigError).input).toBe('min-age-days')
      expect((caught as Error).message).toContain('min-age-days')
    }
  )
})

describe('scheduleGuard', () => {
  const found = (value: string): VariableRead => ({ status: 'found', value })

  it('skips a scheduled run when the last rotation is younger than min-age-days', async () => {
    const decision = await scheduleGuard(input({}, found('2027-01-08T10:00:00.000Z')))
    expect(decision.action).toBe('skip')
    if (decision.action !== 'skip') return
    expect(decision.ageDays).toBeCloseTo(6.7, 1)
    expect(decision.notice).toContain('JWT_SECRETS_ROTATED_AT')
    expect(decision.notice).toContain('min-age-days 30')
  })

  it('rotates when the last rotation is exactly min-age-days old or older', async () => {
    const exactly = new Date(NOW.getTime() - 30 * 86400000).toISOString()
    expect((await scheduleGuard(input({}, found(exactly)))).action).toBe('rotate')
    expect((await scheduleGuard(input({}, found('2026-01-15T03:00:00Z')))).action).toBe('rotate')
  })

  it('accepts a date-only value', async () => {
    expect((await scheduleGuard(input({}, found('2027-01-10')))).action).toBe('skip')
  })

  it('always rotates a dispatch run, without reading the variable', async () => {
    let read = false
    const decision = await scheduleGuard({
      ...input({ eventName: 'workflow_dispatch' }),
      readVariable: async () => {
        read = true
        return found(NOW.toISOString())
      }
    })
    expect(decision).toEqual({ action: 'rotate' })
    expect(read).toBe(false)
  })

  it('is disabled by 0', async () => {
    const decision = await scheduleGuard(input({ minAgeDays: 0 }, found(NOW.toISOString())))
    expect(decision).toEqual({ action: 'rotate' })
  })

  it('does not guard runs that rotate nothing (dry run, recover, retire-previous)', async () => {
    const decision = await scheduleGuard(input({ rotates: false }, found(NOW.toISOString())))
    expect(decision).toEqual({ action: 'rotate' })
  })

  it('rotates with a notice when the variable does not exist yet', async () => {
    const decision = await scheduleGuard(input({}, { status: 'missing' }))
    expect(decision.action).toBe('rotate')
    expect(decision).toHaveProperty('notice')
    expect(decision).not.toHaveProperty('warning')
  })

  it('rotates with a notice when no variable is kept', async () => {
    const decision = await scheduleGuard(input({ variableName: '' }, found(NOW.toISOString())))
    expect(decision.action).toBe('rotate')
  })

  it.each([
    ['unreadable (API error)', { status: 'error', error: '403 Forbidden' } as VariableRead],
    ['thrown', new Error('socket hang up')],
    ['not a date', found('last tuesday')],
    ['an invalid date', found('2027-13-45T99:00:00Z')],
    ['in the future', found('2027-02-01T00:00:00Z')],
    ['empty', found('')]
  ])('warns and rotates when the variable is %s', async (_what, read) => {
    const decision = await scheduleGuard(input({}, read))
    expect(decision.action).toBe('rotate')
    expect(decision).toHaveProperty('warning')
    expect((decision as { warning: string }).warning).toContain('rotating anyway')
  })
})

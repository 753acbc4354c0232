import { describe, expect, it } from '@jest/globals'
import { readConfig } from '../../src/config.js'
import { applyHostResult, hostEnvState } from '../../src/host/host-outcome.js'
import type { FollowResult } from '../../src/host/sequence.js'
import type { Outcome } from '../../src/outcome.js'
import { inputs } from './action-inputs.js'
import { fresh } from './report-fixtures.js'

const outcome = (): Outcome => fresh({ mode: 'graceful' })

const at = (iso: string): number => Date.parse(iso)

describe('the host result in the outcome', () => {
  it("counts the retire date from the host's recreate time, not the run's start", () => {
    const o = outcome()
    // The run began at 07:00 on the runner; the host recreated the services at
    // 07:41 by its own clock (a slow CI phase, a skewed clock).
    const summary: FollowResult = {
      terminal: true,
      result: 'success',
      notes: [],
      steps: [
        {
          name: 'backup',
          status: 'ok',
          infos: [],
          startedAt: at('2026-12-05T07:40:00Z'),
          endedAt: at('2026-12-05T07:40:01Z')
        },
        {
          name: 'up',
          status: 'ok',
          infos: [],
          startedAt: at('2026-12-05T07:40:30Z'),
          endedAt: at('2026-12-05T07:41:00Z')
        },
        {
          name: 'health',
          status: 'ok',
          infos: [],
          startedAt: at('2026-12-05T07:41:00Z'),
          endedAt: at('2026-12-05T07:41:05Z')
        }
      ]
    }
    const ok = applyHostResult(o, readConfig(inputs({ mode: 'graceful' })), summary, {
      envText: 'JWT_REFRESH_EXPIRES_IN=7d\nJWT_EXPIRES_IN=15m\n',
      composeCommand: 'docker compose'
    })
    expect(ok).toBe(true)
    expect(o.result).toBe('success')
    expect(o.retireAfter).toBe('2026-12-12T07:41:00.000Z')
    expect(o.retireAfterReason).toMatch(/JWT_REFRESH_EXPIRES_IN=7d/)
  })

  it('knows what the .env holds only from what the host said', () => {
    const o = outcome()
    expect(hostEnvState(o, undefined)).toBe('old')
    expect(hostEnvState(o, { launched: false, launchUnknown: true })).toBe('unknown')
    expect(hostEnvState(o, { launched: true, launchUnknown: false })).toBe('unknown')
    expect(
      hostEnvState({ ...o, hostResult: 'success' }, { launched: true, launchUnknown: false })
    ).toBe('new')
    expect(
      hostEnvState({ ...o, hostResult: 'rolled-back' }, { launched: true, launchUnknown: false })
    ).toBe('old')
    expect(
      hostEnvState(
        {
          hostResult: 'rollback-failed',
          hostSteps: [{ name: 'rollback-restore', status: 'fail' }]
        },
        { launched: true, launchUnknown: false }
      )
    ).toBe('unknown')
  })
})

import { describe, expect, it } from '@jest/globals'
import { parseJournal, summarizeJournal } from '../../src/host/journal.js'
import { describeServiceTimes, serviceTimes } from '../../src/host/service-times.js'
import { renderRestartedServices } from '../../src/report/services.js'
import type { Outcome } from '../../src/outcome.js'

// A targeted immediate run as rotate-host.sh journals it.
const JOURNAL = [
  '1000\trun-start\t-\timmediate\tpid=1 run=r',
  '1000\tstep-start\tprepare\t-\t',
  '1400\tstep-end\tprepare\tok\tservices=backend,worker',
  '1400\tstep-start\tbackup\t-\t',
  '1450\tstep-end\tbackup\tok\tpath=/srv/.env.backup.20261205T010000Z',
  '1450\tstep-start\tstop\t-\t',
  '1700\tapi\t-\tdown\tat=1650',
  '2450\tstep-end\tstop\tok\tservices=backend,worker',
  '2450\tstep-start\tswap\t-\t',
  '2460\tstep-end\tswap\tok\t',
  '2460\tstep-start\trevoke\t-\t',
  '2600\tstep-end\trevoke\tok\trows=3',
  '2600\tstep-start\tup\t-\t',
  '3900\tstep-end\tup\tok\t',
  '3900\tstep-start\thealth\t-\t',
  '4950\tapi\t-\tup\tat=4900',
  '5000\tinfo\thealth\t-\ttry 9: HTTP 200',
  '5000\tstep-end\thealth\tok\t',
  '5100\tservice\tbackend\ttarget\tstopped=2400 started=3800',
  '5150\tservice\tworker\ttarget\tstopped=2440 started=3850',
  '5160\tservice\tfrontend\tunexpected\tstopped=unknown started=3860',
  '5200\tresult\t-\tsuccess\t'
].join('\n')

describe('service times from the journal', () => {
  it('reads per-service stop/start times and the API downtime', () => {
    const times = serviceTimes(parseJournal(JOURNAL))
    expect(times.services).toEqual([
      { service: 'backend', target: true, stoppedAt: 2400, startedAt: 3800 },
      { service: 'worker', target: true, stoppedAt: 2440, startedAt: 3850 },
      { service: 'frontend', target: false, startedAt: 3860 }
    ])
    // First failed probe (1650) to the first healthy one (4900).
    expect(times.apiDowntimeSeconds).toBe(3.3)
    expect(describeServiceTimes(times.services)).toBe(
      'backend (stopped → started 1.4 s), worker (stopped → started 1.4 s), frontend [not a target: recreated by compose]'
    )
  })

  it('summarizeJournal: downtime from the start of stop, services and API downtime', () => {
    const summary = summarizeJournal(parseJournal(JOURNAL))
    expect(summary.downtimeSeconds).toBe(3.6)
    expect(summary.apiDowntimeSeconds).toBe(3.3)
    expect(summary.services?.map((s) => s.service)).toEqual(['backend', 'worker', 'frontend'])
    expect(summary.result).toBe('success')
  })

  it('no API downtime without both probes, nor an up before the down', () => {
    expect(serviceTimes(parseJournal('1\tapi\t-\tdown\tat=5')).apiDowntimeSeconds).toBeUndefined()
    expect(serviceTimes(parseJournal('1\tapi\t-\tup\tat=5')).apiDowntimeSeconds).toBeUndefined()
    expect(summarizeJournal(parseJournal('1\tstep-start\tbackup\t-\t')).services).toBeUndefined()
  })
})

describe('## Services restarted', () => {
  const outcome = {
    restart: 'targeted',
    restartTargets: [
      { service: 'backend', why: 'environment JWT_SECRET, JWT_REFRESH_SECRET' },
      { service: 'worker', why: 'environment JWT_SECRET' }
    ],
    restartedServices: serviceTimes(parseJournal(JOURNAL)).services,
    apiDowntimeSeconds: 3.3,
    hostSteps: []
  } as unknown as Outcome

  it('lists each restarted service with why, when it stopped and started', () => {
    const text = renderRestartedServices(outcome) as string
    expect(text).toMatch(/^## Services restarted \(restart: targeted\)/)
    expect(text).toContain(
      '| `backend` | environment JWT_SECRET, JWT_REFRESH_SECRET | 00:00:02.400 | 00:00:03.800 | 1.4 s |'
    )
    expect(text).toContain(
      '| `worker` | environment JWT_SECRET | 00:00:02.440 | 00:00:03.850 | 1.4 s |'
    )
    expect(text).toMatch(/\| `frontend` \| not a target: recreated by compose/)
    expect(text).toContain('API downtime (first failed to first healthy probe): 3.3 s.')
  })

  it('says when the prober saw no downtime (graceful)', () => {
    const graceful = {
      ...outcome,
      apiDowntimeSeconds: undefined,
      hostSteps: [{ name: 'prepare', status: 'ok' }]
    } as unknown as Outcome
    expect(renderRestartedServices(graceful)).toContain(
      'API downtime: none seen by the host prober (every 0.1 s).'
    )
  })

  it('restart: all restarts every service and names the ones that receive a key', () => {
    expect(renderRestartedServices({ ...outcome, restart: 'all' } as Outcome)).toBe(
      '## Services restarted (restart: all)\n\nEvery service (`down` / `up -d`). The ones that receive a rotated key: `backend` (environment JWT_SECRET, JWT_REFRESH_SECRET), `worker` (environment JWT_SECRET).'
    )
  })

  it('is absent for recover runs and before preflight found targets', () => {
    expect(renderRestartedServices({ ...outcome, restart: undefined } as Outcome)).toBeUndefined()
    expect(renderRestartedServices({ ...outcome, restartTargets: [] } as Outcome)).toBeUndefined()
  })
})

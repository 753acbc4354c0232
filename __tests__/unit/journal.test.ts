import { describe, expect, it } from '@jest/globals'
import fc from 'fast-check'
import {
  JournalReader,
  parseJournal,
  parseJournalLine,
  summarizeJournal
} from '../../src/host/journal.js'

const T0 = 1_760_000_000_000

/** Builds journal lines the way rotate-host.sh's `journal` function prints them. */
function line(dt: number, event: string, step = '-', status = '-', detail = ''): string {
  return `${T0 + dt}\t${event}\t${step}\t${status}\t${detail}\n`
}

const SUCCESS = [
  line(0, 'run-start', '-', 'immediate', 'pid=4242 run=abc123'),
  line(10, 'step-start', 'backup'),
  line(40, 'step-end', 'backup', 'ok', 'path=/opt/cloudbox/.env.backup.20251009T080000Z'),
  line(50, 'step-start', 'down'),
  line(3050, 'step-end', 'down', 'ok'),
  line(3060, 'step-start', 'swap'),
  line(3070, 'step-end', 'swap', 'ok'),
  line(3080, 'step-start', 'up-postgres'),
  line(4080, 'step-end', 'up-postgres', 'ok'),
  line(4090, 'step-start', 'wait-postgres'),
  line(6090, 'step-end', 'wait-postgres', 'ok'),
  line(6100, 'step-start', 'revoke'),
  line(6200, 'step-end', 'revoke', 'ok', 'rows=3'),
  line(6210, 'step-start', 'up'),
  line(9210, 'step-end', 'up', 'ok'),
  line(9220, 'step-start', 'health'),
  line(10220, 'info', 'health', '-', 'try 1: HTTP 000'),
  line(11220, 'info', 'health', '-', 'try 2: HTTP 503'),
  line(12345, 'step-end', 'health', 'ok', 'tries=3'),
  line(12400, 'result', '-', 'success', '')
].join('')

const ROLLED_BACK = [
  line(0, 'run-start', '-', 'immediate', 'pid=1 run=r2'),
  line(10, 'step-start', 'backup'),
  line(20, 'step-end', 'backup', 'ok', 'path=/srv/my app/.env.backup.20251009T080000Z'),
  line(100, 'step-start', 'down'),
  line(1100, 'step-end', 'down', 'ok'),
  line(1110, 'step-start', 'swap'),
  line(1120, 'step-end', 'swap', 'ok'),
  line(1130, 'step-start', 'up-postgres'),
  line(2130, 'step-end', 'up-postgres', 'ok'),
  line(2140, 'step-start', 'wait-postgres'),
  line(3140, 'step-end', 'wait-postgres', 'ok'),
  line(3150, 'step-start', 'revoke'),
  line(3250, 'step-end', 'revoke', 'fail', 'exit=1'),
  line(3260, 'rollback-start', '-', '-', 'revoke'),
  line(3270, 'step-start', 'rollback-restore'),
  line(3280, 'step-end', 'rollback-restore', 'ok', 'path=/srv/my app/.env.backup'),
  line(3290, 'step-start', 'rollback-up'),
  line(6290, 'step-end', 'rollback-up', 'ok'),
  line(6300, 'step-start', 'rollback-health'),
  line(8149, 'step-end', 'rollback-health', 'ok'),
  line(8200, 'result', '-', 'rolled-back', 'failed at revoke')
].join('')

describe('JournalReader across a reconnect', () => {
  it('drops a half-received line the host sends again whole', () => {
    const reader = new JournalReader()
    const first = `${T0}\tstep-start\tbackup\t-\t\n`
    const second = `${T0 + 5}\tstep-end\tbackup\tok\tpath=/d/.env.backup.1\n`
    expect(reader.push(first + second.slice(0, 12))).toHaveLength(1)
    reader.resume()
    // The new follower starts at line reader.lines: the second line, whole.
    expect(reader.lines).toBe(1)
    const events = reader.push(second)
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({ event: 'step-end', step: 'backup', status: 'ok' })
    expect(reader.malformed).toBe(0)
  })
})

describe('parseJournalLine', () => {
  it('maps - and empty fields to undefined', () => {
    expect(parseJournalLine(`${T0}\tstep-start\tdown\t-\t`)).toEqual({
      at: T0,
      event: 'step-start',
      step: 'down'
    })
    expect(parseJournalLine(`${T0}\tinfo\thealth\t-\ttry 3: HTTP 503`)).toEqual({
      at: T0,
      event: 'info',
      step: 'health',
      detail: 'try 3: HTTP 503'
    })
    expect(parseJournalLine(`${T0}\tstep-end\tdown\tok`)).toEqual({
      at: T0,
      event: 'step-end',
      step: 'down',
      status: 'ok'
    })
    expect(parseJournalLine(`${T0}\tresult\t-\tsuccess\t\r`)?.status).toBe('success')
  })

  it('rejects malformed lines', () => {
    for (const bad of [
      'garbage',
      `${T0}`,
      `x${T0}\tinfo\t-\t-\tx`,
      `${T0}\tInfo Event\t-\t-\tx`,
      `${T0}\tinfo\t-`,
      `${T0}\tinfo\t-\t-\ta\tb`,
      `\tinfo\t-\t-\t`
    ]) {
      expect(parseJournalLine(bad)).toBeUndefined()
    }
  })
})

describe('summarizeJournal', () => {
  it('a successful immediate run', () => {
    const s = summarizeJournal(parseJournal(SUCCESS))
    expect(s).toMatchObject({
      mode: 'immediate',
      startedAt: T0,
      terminal: true,
      result: 'success',
      backupPath: '/opt/cloudbox/.env.backup.20251009T080000Z',
      // from the start of down (T0+50) to the healthy check (T0+12345): 12.295 s
      downtimeSeconds: 12.3
    })
    expect(s.failedStep).toBeUndefined()
    expect(s.rollbackOf).toBeUndefined()
    expect(s.steps.map((st) => [st.name, st.status])).toEqual(
      ['backup', 'down', 'swap', 'up-postgres', 'wait-postgres', 'revoke', 'up', 'health'].map(
        (n) => [n, 'ok']
      )
    )
    const health = s.steps.find((st) => st.name === 'health')
    expect(health).toEqual({
      name: 'health',
      startedAt: T0 + 9220,
      endedAt: T0 + 12345,
      status: 'ok',
      detail: 'tries=3',
      infos: ['try 1: HTTP 000', 'try 2: HTTP 503']
    })
    expect(s.steps.find((st) => st.name === 'revoke')?.detail).toBe('rows=3')
  })

  it('a rolled-back run', () => {
    const s = summarizeJournal(parseJournal(ROLLED_BACK))
    expect(s).toMatchObject({
      result: 'rolled-back',
      resultDetail: 'failed at revoke',
      terminal: true,
      rollbackOf: 'revoke',
      failedStep: 'revoke',
      backupPath: '/srv/my app/.env.backup.20251009T080000Z',
      // down start T0+100 → rollback-health ok T0+8149: 8.049 s
      downtimeSeconds: 8
    })
    expect(s.steps.find((st) => st.name === 'revoke')).toMatchObject({
      status: 'fail',
      detail: 'exit=1'
    })
    expect(s.steps.slice(-3).map((st) => st.name)).toEqual([
      'rollback-restore',
      'rollback-up',
      'rollback-health'
    ])
  })

  it('graceful mode: downtime is the up -d window', () => {
    const text = [
      line(0, 'run-start', '-', 'graceful', 'pid=1 run=g'),
      line(10, 'step-start', 'backup'),
      line(20, 'step-end', 'backup', 'ok', 'path=/d/.env.backup.1 extra=1'),
      line(30, 'step-start', 'swap'),
      line(40, 'step-end', 'swap', 'ok'),
      line(1000, 'step-start', 'up'),
      line(3000, 'step-end', 'up', 'ok'),
      line(3010, 'step-start', 'health'),
      line(3520, 'step-end', 'health', 'ok'),
      line(3600, 'result', '-', 'success')
    ].join('')
    const s = summarizeJournal(parseJournal(text))
    expect(s.mode).toBe('graceful')
    expect(s.downtimeSeconds).toBe(2.5)
    expect(s.backupPath).toBe('/d/.env.backup.1')
  })

  it('downtime ends where the settled healthy streak began, not when settling ended', () => {
    const text = [
      line(0, 'run-start', '-', 'immediate', 'pid=1 run=s'),
      line(1000, 'step-start', 'stop'),
      line(1500, 'step-end', 'stop', 'ok'),
      line(1600, 'step-start', 'health'),
      line(2000, 'info', 'health', '-', 'healthy from try 2: HTTP 200'),
      line(2200, 'info', 'health', '-', 'try 4: HTTP 000 after a healthy answer: not settled'),
      line(3000, 'info', 'health', '-', 'healthy from try 9: HTTP 200'),
      line(6000, 'step-end', 'health', 'ok'),
      line(6100, 'result', '-', 'success')
    ].join('')
    expect(summarizeJournal(parseJournal(text)).downtimeSeconds).toBe(2)
  })

  it('recover mode', () => {
    const text = [
      line(0, 'run-start', '-', 'recover', 'pid=1 run=rec'),
      line(10, 'step-start', 'recover-restore'),
      line(20, 'step-end', 'recover-restore', 'ok', 'path=/d/.env.backup.20250101T000000Z'),
      line(100, 'step-start', 'up'),
      line(2100, 'step-end', 'up', 'ok'),
      line(2110, 'step-start', 'health'),
      line(4100, 'step-end', 'health', 'ok'),
      line(4200, 'result', '-', 'recovered')
    ].join('')
    const s = summarizeJournal(parseJournal(text))
    expect(s).toMatchObject({ mode: 'recover', result: 'recovered', downtimeSeconds: 4 })
    expect(s.backupPath).toBeUndefined()
    expect(s.restoredFrom).toBe('/d/.env.backup.20250101T000000Z')
  })

  it('an interrupted journal: not terminal, the running step shows', () => {
    const cut = SUCCESS.split('\n').slice(0, 10).join('\n') + '\n'
    const s = summarizeJournal(parseJournal(cut))
    expect(s.terminal).toBe(false)
    expect(s.result).toBeUndefined()
    expect(s.downtimeSeconds).toBeUndefined()
    expect(s.steps[s.steps.length - 1]).toEqual({
      name: 'wait-postgres',
      startedAt: T0 + 4090,
      status: 'running',
      infos: []
    })
    expect(s.lastEventAt).toBe(T0 + 4090)
  })

  it('never healthy: no downtime; a failed rollback', () => {
    const text = [
      line(0, 'run-start', '-', 'immediate'),
      line(10, 'step-start', 'down'),
      line(20, 'step-end', 'down', 'ok'),
      line(30, 'step-start', 'health'),
      line(40, 'info', 'health', '-', 'gave up after 60 tries, last HTTP 502'),
      line(50, 'step-end', 'health', 'fail', 'exit=1'),
      line(60, 'rollback-start', '-', '-', 'health'),
      line(70, 'step-start', 'rollback-health'),
      line(80, 'step-end', 'rollback-health', 'fail'),
      line(85, 'info', '-', '-', 'SIGTERM received: rolling back'),
      line(90, 'result', '-', 'rollback-failed', 'failed at health')
    ].join('')
    const s = summarizeJournal(parseJournal(text))
    expect(s).toMatchObject({
      result: 'rollback-failed',
      failedStep: 'health',
      rollbackOf: 'health',
      terminal: true,
      notes: ['SIGTERM received: rolling back']
    })
    expect(s.downtimeSeconds).toBeUndefined()
    expect(s.steps[1].infos).toEqual(['gave up after 60 tries, last HTTP 502'])
  })

  it('an empty journal', () => {
    expect(summarizeJournal([])).toEqual({ steps: [], terminal: false, notes: [] })
  })
})

describe('JournalReader', () => {
  it('buffers partial lines across chunks', () => {
    const reader = new JournalReader()
    const a = reader.push(SUCCESS.slice(0, 30))
    expect(a).toEqual([])
    const firstBreak = SUCCESS.indexOf('\n')
    const b = reader.push(SUCCESS.slice(30, firstBreak + 5))
    expect(b.map((e) => e.event)).toEqual(['run-start'])
    b.push(...reader.push(SUCCESS.slice(firstBreak + 5, 100)))
    const rest = reader.push(SUCCESS.slice(100))
    expect([...b, ...rest]).toEqual(parseJournal(SUCCESS))
    expect(reader.end()).toEqual([])
    expect(reader.lines).toBe(20)
  })

  it('any chunking gives the same events as one parse', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: ROLLED_BACK.length }), { maxLength: 30 }),
        (cuts) => {
          const points = [...new Set(cuts)].sort((x, y) => x - y)
          const reader = new JournalReader()
          const events = []
          let from = 0
          for (const p of [...points, ROLLED_BACK.length]) {
            events.push(...reader.push(ROLLED_BACK.slice(from, p)))
            from = p
          }
          events.push(...reader.end())
          expect(events).toEqual(parseJournal(ROLLED_BACK))
        }
      )
    )
  })

  it('skips and counts malformed lines, handles CRLF and a last line without break', () => {
    const reader = new JournalReader()
    const events = reader.push(
      `garbage line\n${T0}\tstep-start\tdown\t-\t\r\n\n${T0}\tbroken\n${T0 + 5}\tstep-end\tdown\tok\t`
    )
    expect(events).toEqual([{ at: T0, event: 'step-start', step: 'down' }])
    expect(reader.malformed).toBe(2)
    expect(reader.end()).toEqual([{ at: T0 + 5, event: 'step-end', step: 'down', status: 'ok' }])
    expect(reader.lines).toBe(4)
  })
})

// Parsing of the host sequence's journal (pure). The host script appends one
// event per line to `.rotation/journal`, tab separated:
//
//   <epoch_ms> \t <event> \t <step> \t <status> \t <detail>
//
// Unused fields are `-`; the detail may be empty or hold spaces, never a tab
// or line break. Events: run-start (status = mode), step-start, step-end
// (status ok|fail), info, rollback-start (detail = the failed step) and
// result (status = the outcome). Unknown event names are kept (forward
// compatible); lines that do not have this shape are skipped and counted.
// `service` and `api` events (restart: targeted) are read by service-times.ts.
import { serviceTimes, type ServiceTimes } from './service-times.js'

export interface JournalEvent {
  at: number
  event: string
  step?: string
  status?: string
  detail?: string
}

const EVENT_NAME = /^[a-z][a-z0-9-]*$/

function field(value: string | undefined): string | undefined {
  return value === undefined || value === '-' || value === '' ? undefined : value
}

/** Parses one journal line (without its line break); undefined when malformed. */
export function parseJournalLine(line: string): JournalEvent | undefined {
  const fields = line.replace(/\r$/, '').split('\t')
  // The detail may be absent altogether (4 fields) or empty (5 fields).
  if (fields.length < 4 || fields.length > 5) return undefined
  const [at, event, step, status, detail] = fields
  if (!/^\d{1,16}$/.test(at) || !EVENT_NAME.test(event)) return undefined
  const parsed: JournalEvent = { at: Number(at), event }
  const s = field(step)
  const st = field(status)
  const d = detail === undefined || detail === '' ? undefined : detail
  if (s !== undefined) parsed.step = s
  if (st !== undefined) parsed.status = st
  if (d !== undefined) parsed.detail = d
  return parsed
}

/**
 * Incremental reader for a journal that arrives in chunks (e.g. `tail -f`
 * over SSH): buffers a partial last line until its line break arrives.
 */
export class JournalReader {
  private pending = ''
  /** Complete lines skipped because they were malformed. */
  malformed = 0
  /** Complete lines consumed so far (well-formed and malformed). */
  lines = 0

  push(chunk: string): JournalEvent[] {
    this.pending += chunk
    const events: JournalEvent[] = []
    let nl = this.pending.indexOf('\n')
    while (nl !== -1) {
      this.take(this.pending.slice(0, nl), events)
      this.pending = this.pending.slice(nl + 1)
      nl = this.pending.indexOf('\n')
    }
    return events
  }

  /**
   * Drops a half-received line: after a reconnect the host resends from the
   * first line not yet complete, so keeping the half would garble that line.
   */
  resume(): void {
    this.pending = ''
  }

  /** Ends the input: a last line without a line break is parsed too. */
  end(): JournalEvent[] {
    const events: JournalEvent[] = []
    if (this.pending !== '') this.take(this.pending, events)
    this.pending = ''
    return events
  }

  private take(line: string, events: JournalEvent[]): void {
    if (line.replace(/\r$/, '') === '') return
    this.lines += 1
    const event = parseJournalLine(line)
    if (event === undefined) this.malformed += 1
    else events.push(event)
  }
}

/** All events of a complete journal text (malformed lines skipped). */
export function parseJournal(text: string): JournalEvent[] {
  const reader = new JournalReader()
  return [...reader.push(text), ...reader.end()]
}

export interface StepRecord {
  name: string
  startedAt: number
  endedAt?: number
  status: 'running' | 'ok' | 'fail'
  detail?: string
  infos: string[]
}

export interface JournalSummary extends Partial<ServiceTimes> {
  mode?: string
  startedAt?: number
  steps: StepRecord[]
  /** The step whose failure started the rollback. */
  rollbackOf?: string
  /** The `result` event's status: success, rolled-back, rollback-failed, recovered, recover-failed, aborted… */
  result?: string
  /** The `result` event's detail. */
  resultDetail?: string
  /** A `result` event was seen: the host sequence has ended. */
  terminal: boolean
  /** The step that failed first (the rollback's cause when there was one). */
  failedStep?: string
  /** From the start of `down` or `stop` (else of `up`) to the first healthy check, 0.1 s precision. */
  downtimeSeconds?: number
  /** `path=` of the backup step's end. */
  backupPath?: string
  /** `path=` of the recover-restore step's end: the backup a recovery restored. */
  restoredFrom?: string
  /** Info events that name no step (e.g. "SIGTERM received: rolling back"). */
  notes: string[]
  /** The last event's time. */
  lastEventAt?: number
}

const HEALTH_STEPS = new Set(['health', 'rollback-health'])

function pathOf(detail: string | undefined): string | undefined {
  if (detail === undefined) return undefined
  // `path=/abs/path`, possibly followed by other `key=value` fields; paths may hold spaces.
  const m = /(?:^|\s)path=(\/.*?)(?=\s+[A-Za-z_][A-Za-z0-9_]*=|\s*$)/.exec(detail)
  return m?.[1]
}

export function summarizeJournal(events: JournalEvent[]): JournalSummary {
  const summary: JournalSummary = { steps: [], terminal: false, notes: [] }
  let downFrom: number | undefined
  let upFrom: number | undefined
  let healthyAt: number | undefined
  // Where the health step's last healthy streak began: the end of the downtime.
  let streakFrom: number | undefined

  const lastRecord = (name: string, running: boolean): StepRecord | undefined => {
    for (let i = summary.steps.length - 1; i >= 0; i--) {
      const s = summary.steps[i]
      if (s.name === name && (!running || s.status === 'running')) return s
    }
    return undefined
  }

  for (const e of events) {
    summary.lastEventAt = e.at
    switch (e.event) {
      case 'run-start':
        summary.mode = e.status
        summary.startedAt = e.at
        break
      case 'step-start': {
        if (e.step === undefined) break
        summary.steps.push({
          name: e.step,
          startedAt: e.at,
          status: 'running',
          ...(e.detail !== undefined ? { detail: e.detail } : {}),
          infos: []
        })
        if ((e.step === 'down' || e.step === 'stop') && downFrom === undefined) downFrom = e.at
        // target swarm: its rolling update begins with the deploy.
        if ((e.step === 'up' || e.step === 'deploy') && upFrom === undefined) upFrom = e.at
        break
      }
      case 'step-end': {
        if (e.step === undefined) break
        let record = lastRecord(e.step, true)
        if (record === undefined) {
          // An end without its start (journal cut at the front): keep what we know.
          record = { name: e.step, startedAt: e.at, status: 'running', infos: [] }
          summary.steps.push(record)
        }
        record.endedAt = e.at
        record.status = e.status === 'ok' ? 'ok' : 'fail'
        if (e.detail !== undefined) record.detail = e.detail
        if (record.status === 'ok' && HEALTH_STEPS.has(e.step) && healthyAt === undefined) {
          healthyAt = streakFrom ?? e.at
        }
        if (record.status === 'fail' && summary.failedStep === undefined) {
          summary.failedStep = e.step
        }
        if (e.step === 'backup' && record.status === 'ok') {
          const path = pathOf(e.detail)
          if (path !== undefined) summary.backupPath = path
        }
        if (e.step === 'recover-restore' && record.status === 'ok') {
          const path = pathOf(e.detail)
          if (path !== undefined) summary.restoredFrom = path
        }
        break
      }
      case 'info': {
        const text = e.detail ?? ''
        if (e.step !== undefined && HEALTH_STEPS.has(e.step) && text.startsWith('healthy from')) {
          streakFrom = e.at
        }
        const record = e.step === undefined ? undefined : lastRecord(e.step, false)
        if (record !== undefined) record.infos.push(text)
        else summary.notes.push(e.step === undefined ? text : `${e.step}: ${text}`)
        break
      }
      case 'rollback-start':
        summary.rollbackOf = e.detail ?? e.step
        break
      case 'result':
        summary.result = e.status
        if (e.detail !== undefined) summary.resultDetail = e.detail
        summary.terminal = true
        break
      default:
        break
    }
  }

  if (summary.rollbackOf !== undefined) summary.failedStep = summary.rollbackOf
  const times = serviceTimes(events)
  if (times.services.length > 0) summary.services = times.services
  if (times.apiDowntimeSeconds !== undefined) summary.apiDowntimeSeconds = times.apiDowntimeSeconds
  const from = downFrom ?? upFrom
  if (from !== undefined && healthyAt !== undefined && healthyAt >= from) {
    summary.downtimeSeconds = Math.round((healthyAt - from) / 100) / 10
  }
  return summary
}

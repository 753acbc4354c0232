// Per-service stop/start times and the API's own downtime, from the host
// journal (pure). With restart: targeted the host sequence journals
//   service <TAB> <name> <TAB> target|unexpected <TAB> stopped=<ms> started=<ms>
// for each service it recreated, and a background prober journals
//   api <TAB> - <TAB> down|up <TAB> at=<ms>
// at the first failed probe and the first healthy one after it.
import type { JournalEvent } from './journal.js'

export interface ServiceTiming {
  service: string
  /** false: recreated although it receives no rotated key (compose saw another change). */
  target: boolean
  stoppedAt?: number
  startedAt?: number
}

export interface ServiceTimes {
  services: ServiceTiming[]
  /** First failed probe → first healthy probe, 0.1 s precision. */
  apiDowntimeSeconds?: number
}

function msField(detail: string | undefined, name: string): number | undefined {
  const m = new RegExp(`(?:^|\\s)${name}=(\\d{1,16})(?:\\s|$)`).exec(detail ?? '')
  return m ? Number(m[1]) : undefined
}

export function serviceTimes(events: JournalEvent[]): ServiceTimes {
  const services: ServiceTiming[] = []
  let downAt: number | undefined
  let upAt: number | undefined
  for (const e of events) {
    if (e.event === 'service' && e.step !== undefined) {
      const timing: ServiceTiming = { service: e.step, target: e.status !== 'unexpected' }
      const stopped = msField(e.detail, 'stopped')
      const started = msField(e.detail, 'started')
      if (stopped !== undefined) timing.stoppedAt = stopped
      if (started !== undefined) timing.startedAt = started
      services.push(timing)
    } else if (e.event === 'api') {
      const at = msField(e.detail, 'at') ?? e.at
      if (e.status === 'down' && downAt === undefined) downAt = at
      if (e.status === 'up' && downAt !== undefined && upAt === undefined) upAt = at
    }
  }
  const times: ServiceTimes = { services }
  if (downAt !== undefined && upAt !== undefined && upAt >= downAt) {
    times.apiDowntimeSeconds = Math.round((upAt - downAt) / 100) / 10
  }
  return times
}

/** "backend (down 2.1 s), worker (down 2.3 s)"; unexpected ones flagged. */
export function describeServiceTimes(services: ServiceTiming[]): string {
  return services
    .map((s) => {
      const down =
        s.stoppedAt !== undefined && s.startedAt !== undefined && s.startedAt >= s.stoppedAt
          ? ` (stopped → started ${(Math.round((s.startedAt - s.stoppedAt) / 100) / 10).toFixed(1)} s)`
          : ''
      return `${s.service}${down}${s.target ? '' : ' [not a target: recreated by compose]'}`
    })
    .join(', ')
}

// `## Services restarted`: which services the host sequence restarted, why,
// and when each stopped and started (restart: targeted).
import type { Outcome } from '../outcome.js'
import { code, inline, seconds, table } from './markdown.js'

function clock(ms: number | undefined): string {
  return ms === undefined ? '—' : new Date(ms).toISOString().slice(11, 23)
}

export function renderRestartedServices(o: Outcome): string | undefined {
  if (o.restart === undefined || (o.restartTargets ?? []).length === 0) return undefined
  const heading = `## Services restarted (restart: ${o.restart})`
  if (o.restart === 'all') {
    return `${heading}\n\nEvery service (\`down\` / \`up -d\`). The ones that receive a rotated key: ${(
      o.restartTargets ?? []
    )
      .map((t) => `${code(t.service)} (${inline(t.why)})`)
      .join(', ')}.`
  }
  const timings = new Map((o.restartedServices ?? []).map((s) => [s.service, s]))
  const rows = (o.restartTargets ?? []).map((t) => {
    const s = timings.get(t.service)
    const down =
      s?.stoppedAt !== undefined && s.startedAt !== undefined && s.startedAt >= s.stoppedAt
        ? `${seconds((s.startedAt - s.stoppedAt) / 1000)} s`
        : '—'
    return [code(t.service), inline(t.why), clock(s?.stoppedAt), clock(s?.startedAt), down]
  })
  for (const s of o.restartedServices ?? []) {
    if (s.target) continue
    rows.push([
      code(s.service),
      'not a target: recreated by compose (its configuration changed)',
      clock(s.stoppedAt),
      clock(s.startedAt),
      '—'
    ])
  }
  const lines = [
    heading,
    table(['Service', 'Why', 'Stopped (UTC)', 'Started (UTC)', 'Stopped → started'], rows)
  ]
  const api = seconds(o.apiDowntimeSeconds)
  if (api !== undefined) lines.push(`API downtime (first failed to first healthy probe): ${api} s.`)
  else if (o.hostSteps.some((step) => step.name === 'prepare' && step.status === 'ok'))
    lines.push('API downtime: none seen by the host prober (every 0.1 s).')
  return lines.join('\n\n')
}

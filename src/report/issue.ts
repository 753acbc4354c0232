// The issue a run opens: title and markdown body. Pure. Renders only what the
// Outcome holds (names, scopes, times, verdicts), never a secret value.
import type { LoginCheck, Outcome, SecretRef } from '../outcome.js'
import { checklist, renderChecklist } from './checklist.js'
import { renderRestartedServices } from './services.js'
import { alert, code, fenced, inline, link, paragraphLines, seconds, table } from './markdown.js'

/** Log lines shown at most in the body. */
export const MAX_LOG_SAMPLES = 5

function validDate(iso: string): Date | undefined {
  const date = new Date(iso)
  return Number.isNaN(date.getTime()) ? undefined : date
}

/** The rotation time as ISO-8601 UTC (kept verbatim when it already is). */
export function rotatedAtUtc(o: Outcome): string {
  if (/^\d{4}-\d{2}-\d{2}T[\d:.]+Z$/.test(o.rotatedAt)) return o.rotatedAt
  return validDate(o.rotatedAt)?.toISOString() ?? o.rotatedAt
}

/** YYYY-MM-DD of the rotation time, in UTC. */
export function rotationDate(o: Outcome): string {
  const utc = rotatedAtUtc(o)
  return /^\d{4}-\d{2}-\d{2}/.test(utc) ? utc.slice(0, 10) : 'unknown-date'
}

export function isRefused(o: Outcome): boolean {
  return (o.refused?.length ?? 0) > 0
}

/** `JWT secret rotation <YYYY-MM-DD>: <result>` (DESIGN §5). */
export function issueTitle(o: Outcome): string {
  return `JWT secret rotation ${rotationDate(o)}: ${o.result}`
}

function list(items: string[]): string[] {
  return items.map((item) => `- ${inline(item)}`)
}

function ref(s: SecretRef): string {
  return `${inline(s.scope)} ${code(s.name)}`
}

/** Banners that open the body: mismatch first, then refusal / failure / recovery / dry run. */
export function renderBanners(o: Outcome): string[] {
  const blocks: string[] = []
  if (o.mismatch) {
    blocks.push(
      alert('CAUTION', [
        '**CI secrets and production may disagree.**',
        '',
        ...paragraphLines(o.mismatch)
      ])
    )
  }
  const stateNow = o.stateNow ? [`**State now:** ${inline(o.stateNow)}`] : []
  if (isRefused(o)) {
    blocks.push(
      alert('WARNING', [
        '**Refused by preflight: nothing was changed.**',
        '',
        ...list(o.refused ?? []),
        ...(stateNow.length > 0 ? ['', ...stateNow] : [])
      ])
    )
  } else if (o.result === 'failed' || o.result === 'rolled-back') {
    const headline =
      o.result === 'rolled-back'
        ? '**The rotation failed and was rolled back.**'
        : '**The rotation failed.**'
    blocks.push(
      alert(o.result === 'failed' ? 'CAUTION' : 'WARNING', [
        headline,
        '',
        `**What failed:** ${o.failure ? inline(o.failure) : 'not recorded'}`,
        '',
        o.changed.length > 0 ? '**What was changed:**' : '**What was changed:** nothing',
        ...list(o.changed),
        ...(stateNow.length > 0 ? ['', ...stateNow] : [])
      ])
    )
  } else if (o.result === 'recovered') {
    blocks.push(
      alert('IMPORTANT', [
        '**Recovery run: the host was brought back after an interrupted rotation.**',
        ...(o.changed.length > 0 ? ['', '**What was changed:**', ...list(o.changed)] : []),
        ...(stateNow.length > 0 ? ['', ...stateNow] : [])
      ])
    )
  } else if (o.result === 'dry-run' || o.dryRun) {
    blocks.push(alert('NOTE', ['**Dry run: nothing was changed.**']))
  }
  return blocks
}

function modeText(o: Outcome): string {
  const extras = [o.recover ? 'recover' : '', o.dryRun ? 'dry run' : ''].filter(Boolean)
  return extras.length > 0 ? `${o.mode} (${extras.join(', ')})` : o.mode
}

function revokedText(o: Outcome): string {
  if (o.revokedRows !== undefined) return String(o.revokedRows)
  if (o.mode === 'graceful') return 'none (graceful mode keeps sessions)'
  return 'n/a'
}

/** The facts table: when, why, how, who, where, result, downtime, backup, revocation. */
export function renderFacts(o: Outcome): string {
  const downtime = seconds(o.downtimeSeconds)
  const rows: string[][] = [
    ['Rotation date', code(rotatedAtUtc(o))],
    ['Reason', inline(o.reason) || 'n/a'],
    ['Mode', inline(modeText(o))],
    ['Triggered by', inline(o.triggeredBy) || 'n/a'],
    ['Run', o.runUrl ? link(o.runUrl) : 'n/a'],
    ['Result', `**${inline(o.result)}**`]
  ]
  if (o.verification) rows.push(['Verification', inline(o.verification)])
  if (o.hostResult) rows.push(['Host sequence', inline(o.hostResult)])
  if (o.restart) rows.push(['Restart', inline(o.restart)])
  const api = seconds(o.apiDowntimeSeconds)
  rows.push(
    ['Downtime', downtime !== undefined ? `${downtime} s` : 'n/a'],
    ...(api !== undefined ? [['API downtime', `${api} s`]] : []),
    ['Backup', o.backupPath ? code(o.backupPath) : 'n/a'],
    ['Revoked refresh tokens', revokedText(o)]
  )
  return table(['Fact', 'Value'], rows)
}

const STEP_ICON: Record<string, string> = { ok: '✅', fail: '❌', running: '⏳' }

/** `## Host steps`: step, result, duration, detail. */
export function renderHostSteps(o: Outcome): string {
  const heading = '## Host steps'
  if (o.hostSteps.length === 0) {
    const why = isRefused(o) || o.dryRun ? ' (nothing was changed on the host)' : ''
    return `${heading}\n\nNo host step ran${why}.`
  }
  const rows = o.hostSteps.map((step) => {
    const duration = seconds(step.seconds)
    return [
      inline(step.name),
      `${STEP_ICON[step.status] ?? '❔'} ${step.status}`,
      duration !== undefined ? `${duration} s` : '—',
      step.detail ? inline(step.detail) : ''
    ]
  })
  return `${heading}\n\n${table(['Step', 'Result', 'Duration', 'Detail'], rows)}`
}

/** `## CI secrets written`: names and scopes only; restored and unrestored apart. */
export function renderSecrets(o: Outcome): string {
  const parts = ['## CI secrets written']
  if (o.updatedSecrets.length > 0) {
    const created = new Set((o.createdSecrets ?? []).map((s) => `${s.scope}/${s.name}`))
    parts.push(
      table(
        ['Scope', 'Name'],
        o.updatedSecrets.map((s) => [
          inline(s.scope),
          `${code(s.name)}${created.has(`${s.scope}/${s.name}`) ? ' (created)' : ''}`
        ])
      )
    )
  } else {
    parts.push(
      o.restoredSecrets.length > 0 || o.unrestoredSecrets.length > 0
        ? 'No CI secret holds the new values.'
        : 'None: no CI secret was written.'
    )
  }
  if (o.restoredSecrets.length > 0) {
    parts.push(
      ['**Restored to the previous values:**', ...o.restoredSecrets.map((s) => `- ${ref(s)}`)].join(
        '\n'
      )
    )
  }
  if (o.removedSecrets && o.removedSecrets.length > 0) {
    parts.push(
      [
        '**Created by this run, deleted again:**',
        ...o.removedSecrets.map((s) => `- ${ref(s)}`)
      ].join('\n')
    )
  }
  if (o.unknownSecrets && o.unknownSecrets.length > 0) {
    parts.push(
      alert('CAUTION', [
        `**State UNKNOWN: the answer to ${o.unknownSecrets.length === 1 ? 'this write' : 'these writes'} was lost, so ${o.unknownSecrets.length === 1 ? 'it' : 'each'} may hold the new value or the old one; check the secret's "updated" time in Settings:**`,
        ...o.unknownSecrets.map((s) => `- ${ref(s)}: ${inline(s.error)}`)
      ])
    )
  }
  if (o.skippedScopes && o.skippedScopes.length > 0) {
    parts.push(['**Skipped:**', ...o.skippedScopes.map((line) => `- ${inline(line)}`)].join('\n'))
  }
  if (o.ignoredEnvironments && o.ignoredEnvironments.length > 0) {
    parts.push(
      [
        "**Left alone (ignore-environments: another app's secret of the same name):**",
        ...o.ignoredEnvironments.map((e) => `- ${inline(e)}`)
      ].join('\n')
    )
  }
  if (o.unrestoredSecrets.length > 0) {
    parts.push(
      alert('CAUTION', [
        `**${o.unrestoredSecrets.length === 1 ? '1 CI secret' : `${o.unrestoredSecrets.length} CI secrets`} could NOT be restored and still hold the new values; set them back by hand:**`,
        ...o.unrestoredSecrets.map((s) => `- ${ref(s)}: ${inline(s.error)}`)
      ])
    )
  }
  return parts.join('\n\n')
}

function verdict(status: string | undefined, reason: string | undefined): string {
  const icon: Record<string, string> = {
    verified: '✅',
    clean: '✅',
    'expected-only': '✅',
    failed: '❌',
    'config-errors': '❌',
    skipped: '➖'
  }
  if (!status) return 'not run'
  const text = `${icon[status] ?? '❔'} ${status}`
  return reason ? `${text}: ${inline(reason)}` : text
}

function loginLine(o: Outcome, account: LoginCheck['account'], label: string): string {
  const check = o.logins.find((l) => l.account === account)
  return `- ${label}: ${verdict(check?.status, check?.reason)}`
}

/** `## Verification`: health, logins, log scan with up to five (redacted) samples. */
export function renderVerification(o: Outcome): string {
  const lines = [
    '## Verification',
    '',
    `- Health: ${verdict(o.health?.status, o.health?.reason)}`,
    loginLine(o, 'admin', 'Admin login'),
    loginLine(o, 'user', 'Regular user login')
  ]
  const scan = o.logScan
  if (!scan) {
    lines.push('- Log scan: not run')
    return lines.join('\n')
  }
  const since = scan.since ? ` since ${code(scan.since)}` : ''
  lines.push(
    `- Log scan${since}: ${verdict(scan.status, scan.reason)}; ` +
      `${scan.total} matching line(s): ${scan.expected} expected (clients holding old tokens), ` +
      `${scan.configErrors} configuration error(s)` +
      (scan.unexpected ? `, ${scan.unexpected} unexpected JWT error(s)` : '')
  )
  if (scan.samples.length > 0) {
    const shown = scan.samples.slice(0, MAX_LOG_SAMPLES)
    const more = scan.samples.length - shown.length
    lines.push(
      '',
      `Sample lines (redacted${more > 0 ? `; ${more} more not shown` : ''}):`,
      '',
      fenced(shown)
    )
  }
  return lines.join('\n')
}

/** Graceful mode: when to run `retire-previous`. */
export function renderRetireNote(o: Outcome): string | undefined {
  if (o.mode !== 'graceful' || !o.retireAfter) return undefined
  if (o.result !== 'success') return undefined
  return alert('NOTE', [
    `Run mode: retire-previous after ${inline(o.retireAfter)} (${inline(o.retireAfterReason ?? 'the longest token lifetime: CloudBox refresh tokens live 7 days')}).`
  ])
}

/** Dry run: what a real run would touch. */
export function renderPlan(o: Outcome): string | undefined {
  if (!o.plan || o.plan.length === 0) return undefined
  return ['## Plan', '', ...list(o.plan)].join('\n')
}

/** `## Post-rotation checklist` and the runbook's five lines. */
export function renderChecklistSection(o: Outcome): string {
  return `## Post-rotation checklist\n\n${renderChecklist(checklist(o))}`
}

/** Every section after the banners, in order; shared with the job summary. */
export function renderSections(o: Outcome): string[] {
  const sections: Array<string | undefined> = [
    renderFacts(o),
    renderPlan(o),
    renderHostSteps(o),
    renderRestartedServices(o),
    renderSecrets(o),
    renderVerification(o),
    renderRetireNote(o),
    renderChecklistSection(o)
  ]
  return sections.filter((s): s is string => s !== undefined)
}

/** The issue body (markdown). */
export function issueBody(o: Outcome): string {
  return [...renderBanners(o), ...renderSections(o)].join('\n\n') + '\n'
}

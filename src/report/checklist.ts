// The runbook's post-rotation checklist, completed from what the run verified.
// Pure: the same Outcome always gives the same five lines.
import type { LoginCheck, Outcome, SecretRef } from '../outcome.js'
import { inline } from './markdown.js'

export interface ChecklistItem {
  /** One of CHECKLIST_TEXTS, verbatim. */
  text: string
  done: boolean
  /** Why the item is not done (absent when done). */
  reason?: string
}

/** The runbook's lines, verbatim and in order (DESIGN §5). */
export const CHECKLIST_TEXTS = [
  'Verify admin can login',
  'Verify regular user can login',
  'Check error logs for JWT-related errors',
  'Update secret in any CI/CD pipelines',
  'Document rotation date'
] as const

/** Why verification did not run at all, or undefined when it could have. */
export function notRunReason(o: Outcome): string | undefined {
  if (o.refused && o.refused.length > 0) return 'not run: refused by preflight'
  if (o.dryRun || o.result === 'dry-run') return 'not run: dry run'
  if (o.result === 'rolled-back') return 'not run: rotation rolled back'
  if (o.result === 'failed') return 'not run: rotation failed'
  return undefined
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`
}

function loginItem(o: Outcome, account: LoginCheck['account'], text: string): ChecklistItem {
  const check = o.logins.find((l) => l.account === account)
  const credentials = `${account}-credentials`
  if (!check) {
    const reason = notRunReason(o) ?? `skipped: no ${credentials} given`
    return { text, done: false, reason }
  }
  switch (check.status) {
    case 'verified':
      return { text, done: true }
    case 'skipped':
      return {
        text,
        done: false,
        reason: `skipped: ${check.reason ?? notRunReason(o) ?? `no ${credentials} given`}`
      }
    case 'failed':
      return { text, done: false, reason: `failed: ${check.reason ?? 'login check failed'}` }
  }
}

function logItem(o: Outcome, text: string): ChecklistItem {
  const scan = o.logScan
  if (!scan) return { text, done: false, reason: notRunReason(o) ?? 'log scan not run' }
  switch (scan.status) {
    case 'clean':
    case 'expected-only':
      return { text, done: true }
    case 'config-errors':
      return {
        text,
        done: false,
        reason: `${plural(scan.configErrors, 'configuration error')} in the logs`
      }
    case 'unexpected-jwt-errors':
      return {
        text,
        done: false,
        reason: `${plural(scan.unexpected ?? 0, 'unexpected JWT error')} in the logs (neither old tokens rejected nor configuration errors)`
      }
    case 'skipped':
      return { text, done: false, reason: scan.reason ? `skipped: ${scan.reason}` : 'skipped' }
    case 'failed':
      return {
        text,
        done: false,
        reason: `log scan failed${scan.reason ? `: ${scan.reason}` : ''}`
      }
  }
}

function refs(list: SecretRef[]): string {
  return list.map((s) => `${s.scope} ${s.name}`).join(', ')
}

function ciItem(o: Outcome, text: string): ChecklistItem {
  const unrestored = o.unrestoredSecrets
  if (unrestored.length > 0) {
    return {
      text,
      done: false,
      reason: `${plural(unrestored.length, 'CI secret')} could not be restored to the previous value (${refs(unrestored)}): CI and production disagree`
    }
  }
  const unknown = o.unknownSecrets ?? []
  if (unknown.length > 0) {
    return {
      text,
      done: false,
      reason: `${plural(unknown.length, 'CI secret')} in an unknown state (${refs(unknown)}): a write's answer was lost`
    }
  }
  if (o.refused && o.refused.length > 0) {
    return { text, done: false, reason: 'not run: refused by preflight; no CI secret was written' }
  }
  if (o.dryRun || o.result === 'dry-run') {
    return { text, done: false, reason: 'not run: dry run; no CI secret was written' }
  }
  if (o.result === 'rolled-back' || o.result === 'failed') {
    const what = o.result === 'rolled-back' ? 'rotation rolled back' : 'rotation failed'
    if (o.restoredSecrets.length > 0 || (o.removedSecrets ?? []).length > 0) {
      return {
        text,
        done: false,
        reason: `${what}; CI secrets restored to the previous values${(o.removedSecrets ?? []).length > 0 ? ' (the ones this run created deleted)' : ''}`
      }
    }
    if (o.updatedSecrets.length > 0) {
      return {
        text,
        done: false,
        reason: `${what}; ${plural(o.updatedSecrets.length, 'CI secret')} hold the new values`
      }
    }
    return { text, done: false, reason: `${what}; no CI secret was written` }
  }
  if (o.result === 'recovered' && o.restoredSecrets.length > 0) {
    return {
      text,
      done: false,
      reason: `recovery: ${plural(o.restoredSecrets.length, 'CI secret')} set to the restored .env's values (${refs(o.restoredSecrets)}); no new secret was generated`
    }
  }
  if (o.updatedSecrets.length === 0) {
    return { text, done: false, reason: 'no CI secret was written' }
  }
  return { text, done: true }
}

function dateItem(o: Outcome, text: string): ChecklistItem {
  const variable = o.rotationDateVariable
  if (variable?.status === 'set') return { text, done: true }
  if (!variable) {
    return { text, done: false, reason: notRunReason(o) ?? 'variable not set' }
  }
  const why = variable.reason ?? (variable.status === 'skipped' ? 'skipped' : 'failed')
  return { text, done: false, reason: `variable not set: ${why}` }
}

/** The five post-rotation lines, in the runbook's order. */
export function checklist(o: Outcome): ChecklistItem[] {
  const [admin, user, logs, ci, date] = CHECKLIST_TEXTS
  return [
    loginItem(o, 'admin', admin),
    loginItem(o, 'user', user),
    logItem(o, logs),
    ciItem(o, ci),
    dateItem(o, date)
  ]
}

/** `- [x] <text>` or `- [ ] <text> — <reason>`, one line each. */
export function renderChecklist(items: ChecklistItem[]): string {
  return items
    .map((item) => {
      if (item.done) return `- [x] ${item.text}`
      const reason = item.reason ? inline(item.reason) : ''
      return reason ? `- [ ] ${item.text} — ${reason}` : `- [ ] ${item.text}`
    })
    .join('\n')
}

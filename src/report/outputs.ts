// The action's outputs (DESIGN §3), from the Outcome.
import * as core from '@actions/core'
import type { Outcome } from '../outcome.js'
import { seconds } from './markdown.js'

/** Output name → value, as strings; empty where unknown. Pure. */
export function outputValues(o: Outcome): Record<string, string> {
  return {
    result: o.result,
    verification: o.verification ?? 'skipped',
    'rotated-at': o.rotatedAt,
    'downtime-seconds': seconds(o.downtimeSeconds) ?? '',
    'issue-url': o.issue?.url ?? '',
    'issue-number': o.issue ? String(o.issue.number) : '',
    'updated-secrets': JSON.stringify(
      o.updatedSecrets.map((s) => ({ scope: s.scope, name: s.name }))
    ),
    'backup-path': o.backupPath ?? ''
  }
}

/** Sets every output through core.setOutput. */
export function setOutputs(o: Outcome): void {
  for (const [name, value] of Object.entries(outputValues(o))) core.setOutput(name, value)
}

// The CI half of a rotation: preflight of where the rotated names live,
// the sealed writes of the new values, and compensation when the host did
// not take them. Names, scopes and states go to the outcome; values never.

import * as core from '@actions/core'
import { scopeLabel, secretScopes, type Config, type SecretScope } from './config.js'
import type { Octokit } from './github/client.js'
import { readInventory } from './github/inventory.js'
import { planPlacement, type PlannedWrite } from './github/placement.js'
import {
  deleteSecrets,
  preflightSecretScopes,
  writeSecrets,
  type ScopeKey,
  type SecretWrite
} from './github/secrets.js'
import { checkToken, expiryWarning } from './github/token.js'
import type { Outcome, SecretRef } from './outcome.js'

type Attempt = PlannedWrite & { state: 'written' | 'ambiguous'; error?: string }

const key = (w: { scope: SecretScope; name: string }): string => `${scopeLabel(w.scope)}/${w.name}`

function ref(w: { scope: SecretScope; name: string }): SecretRef {
  return { scope: scopeLabel(w.scope), name: w.name }
}

function problemsOf(error: unknown): string[] {
  return (error as { problems?: string[] }).problems ?? [(error as Error).message]
}

export class CiSecrets {
  private scopeKeys: ScopeKey[] = []
  private writes: PlannedWrite[] = []
  private attempts: Attempt[] = []

  constructor(
    private readonly config: Config,
    private readonly outcome: Outcome,
    private readonly octokit: Octokit
  ) {}

  /**
   * Each scope's public key, which scopes hold each name, and the refusals
   * for stale copies. Throws with every problem at once. A recovery is never
   * refused for CI placement: it only aligns scopes that hold a name.
   */
  async preflight(worstCaseSeconds: number, now: Date): Promise<void> {
    const c = this.config
    const scopes = secretScopes(c)
    const names = c.keys.map((k) => k.secretName)
    core.info(`GitHub: checking ${scopes.map(scopeLabel).join(', ')} of ${c.owner}/${c.repo}`)
    const [keys, inventory, token] = await Promise.allSettled([
      preflightSecretScopes(this.octokit, c.owner, c.repo, scopes),
      readInventory(this.octokit, c.owner, c.repo, scopes, names, c.ignoreEnvironments),
      checkToken(this.octokit, c.owner, c.repo)
    ])
    const problems: string[] = []
    if (keys.status === 'fulfilled') {
      this.scopeKeys = keys.value
      core.info(`GitHub: token can use ${this.scopeKeys.length} secret scope(s)`)
    } else problems.push(...problemsOf(keys.reason))

    if (token.status === 'fulfilled' && token.value.ok) {
      const warning = expiryWarning(token.value.expiresAt, now, worstCaseSeconds)
      if (warning) core.warning(warning)
    }

    if (inventory.status === 'rejected') {
      const found = problemsOf(inventory.reason)
      if (c.recover) {
        for (const p of found) core.warning(`${p}: no CI secret will be aligned`)
      } else problems.push(...found)
    } else {
      const placement = planPlacement({
        scopes,
        names,
        inventory: inventory.value,
        createMissing: c.createMissing && !c.recover,
        repository: `${c.owner}/${c.repo}`
      })
      this.writes = placement.writes
      for (const notice of placement.notices) core.notice(notice)
      this.outcome.skippedScopes = placement.notices
      if (inventory.value.ignored.length > 0) {
        this.outcome.ignoredEnvironments = inventory.value.ignored.map(
          (e) => `${e.environment} (${e.names.join(', ')})`
        )
        core.info(
          `GitHub: ignored as another app's (ignore-environments): ${this.outcome.ignoredEnvironments.join('; ')}`
        )
      }
      if (c.recover) {
        for (const p of placement.problems) core.warning(p)
        this.writes = this.writes.filter((w) => !w.create)
      } else problems.push(...placement.problems)
      if (placement.problems.length === 0) {
        core.info(`GitHub: the new values go to ${this.describe(this.writes)}`)
      }
    }
    if (problems.length > 0) throw Object.assign(new Error(problems.join('; ')), { problems })
  }

  /** The dry run's lines: each scope, what it receives, and what is skipped. */
  planLines(): string[] {
    const byScope = new Map<string, PlannedWrite[]>()
    for (const w of this.writes)
      byScope.set(scopeLabel(w.scope), [...(byScope.get(scopeLabel(w.scope)) ?? []), w])
    const lines = [...byScope].map(
      ([label, writes]) =>
        `write CI secrets in ${label} (sealed with that scope's key): ${writes.map((w) => `${w.name}${w.create ? ' (created: create-missing)' : ''}`).join(', ')}`
    )
    return [...lines, ...(this.outcome.skippedScopes ?? [])]
  }

  private describe(writes: PlannedWrite[]): string {
    return writes.map((w) => `${key(w)}${w.create ? ' (new)' : ''}`).join(', ')
  }

  /** Writes the new values; false when any write failed (then compensated). */
  async writeNew(values: Record<string, string>): Promise<boolean> {
    const c = this.config
    const byName = new Map(c.keys.map((k) => [k.secretName.toUpperCase(), k.envKey]))
    const writes: SecretWrite[] = this.writes.map((w) => ({
      scope: w.scope,
      name: w.name,
      value: values[byName.get(w.name) ?? '']
    }))
    const result = await writeSecrets(this.octokit, c.owner, c.repo, this.scopeKeys, writes, {
      onWritten: (w) => core.info(`${scopeLabel(w.scope)}: ${w.name} updated`)
    })
    const planned = new Map(this.writes.map((w) => [key(w), w]))
    this.attempts = [
      ...result.written.map((w) => ({
        ...(planned.get(key(w)) as PlannedWrite),
        state: 'written' as const
      })),
      ...result.failed
        .filter((f) => f.ambiguous)
        .map((f) => ({
          ...(planned.get(key(f)) as PlannedWrite),
          state: 'ambiguous' as const,
          error: f.error
        }))
    ]
    const o = this.outcome
    o.updatedSecrets = result.written.map(ref)
    o.createdSecrets = this.attempts.filter((a) => a.state === 'written' && a.create).map(ref)
    o.unknownSecrets = this.attempts
      .filter((a) => a.state === 'ambiguous')
      .map((a) => ({
        ...ref(a),
        error: `${a.error ?? 'no answer'}: GitHub may or may not have applied the new value`
      }))
    if (result.written.length > 0) {
      o.stateNow = 'production untouched, still on the old secrets; CI secrets hold the new values'
      o.changed.push(
        `CI secrets set to the new values: ${o.updatedSecrets.map((s) => `${s.scope}/${s.name}`).join(', ')}${o.createdSecrets.length > 0 ? ` (created: ${o.createdSecrets.map((s) => `${s.scope}/${s.name}`).join(', ')})` : ''}`
      )
    }
    if (result.failed.length === 0) return true
    o.result = 'failed'
    o.failure = `writing CI secrets failed: ${result.failed.map((f) => `${scopeLabel(f.scope)}/${f.name}: ${f.error}${f.ambiguous ? ' (may have been applied)' : ''}`).join('; ')}`
    core.error(o.failure)
    return false
  }

  /** Whether any CI write was made or may have been made. */
  get attempted(): boolean {
    return this.attempts.length > 0
  }

  /**
   * Undoes every write this run made or may have made, once the host is
   * known to be on the old values: a secret it updated gets the old value
   * back, a secret it created is deleted. With the host's state unknown,
   * nothing is written and the report says so.
   */
  async compensate(
    hostEnv: 'old' | 'new' | 'unknown',
    oldValues: Record<string, string>,
    backupHint: string
  ): Promise<void> {
    if (this.attempts.length === 0) return
    const c = this.config
    const o = this.outcome
    if (hostEnv !== 'old') {
      o.mismatch ??=
        'CI secrets hold the NEW values, and whether the host .env does is unknown. Check the host journal and .env, then re-run the rotation (or run with recover: true).'
      core.error(o.mismatch)
      return
    }
    const token = await checkToken(this.octokit, c.owner, c.repo)
    if (!token.ok && /\(401\)/.test(token.reason)) {
      this.unrestorable(this.attempts, token.reason, backupHint)
      return
    }
    const updates = this.attempts.filter((a) => !a.create)
    const creates = this.attempts.filter((a) => a.create)
    const byName = new Map(c.keys.map((k) => [k.secretName.toUpperCase(), k.envKey]))
    core.info(
      `Undoing ${this.attempts.length} CI write(s): ${updates.length} back to the old value, ${creates.length} created ones deleted`
    )
    const restored = await writeSecrets(
      this.octokit,
      c.owner,
      c.repo,
      this.scopeKeys,
      updates.map((a) => ({
        scope: a.scope,
        name: a.name,
        value: oldValues[byName.get(a.name) ?? ''] ?? ''
      })),
      { onWritten: (w) => core.info(`${scopeLabel(w.scope)}: ${w.name} restored to the old value`) }
    )
    const removed = await deleteSecrets(this.octokit, c.owner, c.repo, creates)
    for (const d of removed.deleted)
      core.info(`${scopeLabel(d.scope)}: ${d.name} deleted (this run had created it)`)

    const undone = new Set([...restored.written, ...removed.deleted].map(key))
    o.restoredSecrets = restored.written.map(ref)
    o.removedSecrets = removed.deleted.map(ref)
    o.updatedSecrets = o.updatedSecrets.filter((s) => !undone.has(`${s.scope}/${s.name}`))
    o.createdSecrets = (o.createdSecrets ?? []).filter((s) => !undone.has(`${s.scope}/${s.name}`))
    o.unknownSecrets = (o.unknownSecrets ?? []).filter((s) => !undone.has(`${s.scope}/${s.name}`))
    if (undone.size > 0) {
      const parts = [
        ...(o.restoredSecrets.length > 0
          ? [
              `CI secrets written back to the old values: ${o.restoredSecrets.map((s) => `${s.scope}/${s.name}`).join(', ')}`
            ]
          : []),
        ...(o.removedSecrets.length > 0
          ? [
              `CI secrets this run had created deleted again: ${o.removedSecrets.map((s) => `${s.scope}/${s.name}`).join(', ')}`
            ]
          : [])
      ]
      o.changed.push(...parts)
    }
    const failed = [...restored.failed, ...removed.failed]
    if (failed.length > 0) {
      const attempts = new Map(this.attempts.map((a) => [key(a), a]))
      this.unrestorable(
        failed.map((f) => ({ ...(attempts.get(key(f)) as Attempt), error: f.error })),
        undefined,
        backupHint
      )
    } else {
      o.stateNow += '; CI secrets are back on the old values'
    }
  }

  /** Attempts that could not be undone: written ones disagree with production, ambiguous ones are unknown. */
  private unrestorable(list: Attempt[], reason: string | undefined, backupHint: string): void {
    const o = this.outcome
    const written = list.filter((a) => a.state === 'written')
    const ambiguous = new Set(list.filter((a) => a.state === 'ambiguous').map(key))
    o.unrestoredSecrets = written.map((a) => ({ ...ref(a), error: reason ?? a.error ?? 'failed' }))
    o.unknownSecrets = (o.unknownSecrets ?? []).filter((s) => ambiguous.has(`${s.scope}/${s.name}`))
    const names = [...o.unrestoredSecrets, ...o.unknownSecrets].map((s) => `${s.scope}/${s.name}`)
    o.mismatch = `CI and production DISAGREE: ${names.join(', ')} ${o.unknownSecrets.length > 0 ? 'hold (or may hold)' : 'still hold'} the new value while production runs on the old one${reason ? ` (${reason})` : ''}. A deploy now would push a secret production does not use. Re-run this rotation, or set those secrets to the values in ${backupHint} by hand${o.createdSecrets && o.createdSecrets.length > 0 ? ' (delete the ones this run created)' : ''}.`
    core.error(o.mismatch)
  }

  /** After a recovery, the scopes that hold a name get the restored .env's values. */
  async alignAfterRecovery(values: Record<string, string>): Promise<void> {
    const c = this.config
    if (this.scopeKeys.length === 0) return
    const byName = new Map(c.keys.map((k) => [k.secretName.toUpperCase(), k.envKey]))
    const writes = this.writes
      .map((w) => ({ scope: w.scope, name: w.name, value: values[byName.get(w.name) ?? ''] }))
      .filter((w): w is SecretWrite => w.value !== undefined)
    const result = await writeSecrets(this.octokit, c.owner, c.repo, this.scopeKeys, writes)
    const o = this.outcome
    o.restoredSecrets = result.written.map(ref)
    o.unrestoredSecrets = result.failed.map((f) => ({ ...ref(f), error: f.error }))
    if (result.written.length > 0) {
      o.changed.push(
        `CI secrets set to the restored .env's values: ${o.restoredSecrets.map((s) => `${s.scope}/${s.name}`).join(', ')}`
      )
    }
    if (result.failed.length > 0) {
      o.mismatch = `CI secrets ${o.unrestoredSecrets.map((s) => `${s.scope}/${s.name}`).join(', ')} could not be aligned with the restored .env: set them by hand or re-run`
    }
  }
}

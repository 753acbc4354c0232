// The post step's CI compensation: the old values are saved nowhere on the
// runner, so they are re-read over SSH from a file whose SHA-256 preflight
// recorded. Secrets this run created are deleted instead.
import * as core from '@actions/core'
import { scopeLabel, secretScopes, type Config, type SecretScope } from '../config.js'
import { createOctokit, describeError } from '../github/client.js'
import { deleteSecrets, preflightSecretScopes, writeSecrets } from '../github/secrets.js'
import type { Outcome, SecretRef } from '../outcome.js'
import { readOldValues, type HostLink } from './host.js'
import type { RunState } from './state.js'

const key = (s: SecretRef): string => `${s.scope}/${s.name}`

function scopeOf(label: string): SecretScope {
  return label === 'repository'
    ? { kind: 'repository' }
    : { kind: 'environment', name: label.replace(/^environment:/, '') }
}

function mask(value: string): void {
  if (value !== '') core.setSecret(value)
}

export async function compensate(
  config: Config,
  state: RunState,
  link: HostLink,
  o: Outcome,
  secrets: SecretRef[]
): Promise<{ ok: true } | { ok: false; problem: string }> {
  const refuse = (why: string): { ok: false; problem: string } => {
    o.updatedSecrets = state.ciWritten
    o.mismatch = `CI and production may DISAGREE: ${secrets.map(key).join(', ')} may hold the NEW values while production runs on the old ones, and the post step could not write them back (${why}). Re-run the rotation, or set them to the values of ${o.backupPath ?? `${config.deployPath}/${config.envFile}.backup`} by hand${(state.ciCreated ?? []).length > 0 ? ' (delete the ones this run created)' : ''}.`
    return { ok: false, problem: `write the old values back to the CI secrets: ${why}` }
  }
  const created = new Set((state.ciCreated ?? []).map(key))
  const creates = secrets.filter((s) => created.has(key(s)))
  const updates = secrets.filter((s) => !created.has(key(s)))

  let values: Record<string, string> = {}
  let from = 'the backup'
  if (updates.length > 0) {
    if (!link.session || state.envSha256 === undefined)
      return refuse('no verified source of the old values')
    const paths = [
      ...(o.backupPath ? [o.backupPath] : []),
      ...(state.backupName ? [`${config.deployPath}/${state.backupName}`] : []),
      `${config.deployPath}/${config.envFile}`
    ]
    const old = await readOldValues(
      link.session,
      [...new Set(paths)],
      state.envSha256,
      config.keys.map((k) => k.envKey)
    )
    if (old.values === undefined) return refuse(`the old values could not be re-read: ${old.why}`)
    for (const value of Object.values(old.values)) mask(value)
    core.info(`Old values re-read from ${old.from} (its SHA-256 is the one preflight recorded)`)
    values = old.values
    from = old.from
  }
  const octokit = createOctokit(config.secretsToken)
  let scopeKeys
  try {
    scopeKeys = await preflightSecretScopes(
      octokit,
      config.owner,
      config.repo,
      secretScopes(config).filter((s) => updates.some((x) => x.scope === scopeLabel(s)))
    )
  } catch (error) {
    return refuse(`GitHub: ${describeError(error)}`)
  }
  const writes = updates.map((s) => {
    const k = config.keys.find((c) => c.secretName === s.name)
    return { scope: scopeOf(s.scope), name: s.name, value: values[k?.envKey ?? ''] ?? '' }
  })
  if (writes.some((w) => w.value === '')) return refuse('a secret has no key in keys')
  const result = await writeSecrets(octokit, config.owner, config.repo, scopeKeys, writes, {
    onWritten: (w) => core.info(`${scopeLabel(w.scope)}: ${w.name} restored to the old value`)
  })
  const removed = await deleteSecrets(
    octokit,
    config.owner,
    config.repo,
    creates.map((s) => ({ scope: scopeOf(s.scope), name: s.name }))
  )
  for (const d of removed.deleted)
    core.info(`${scopeLabel(d.scope)}: ${d.name} deleted (this run had created it)`)
  const ref = (w: { scope: SecretScope; name: string }): SecretRef => ({
    scope: scopeLabel(w.scope),
    name: w.name
  })
  const restored = [...state.ciRestored, ...result.written.map(ref)]
  o.restoredSecrets = restored
  o.removedSecrets = removed.deleted.map(ref)
  const failed = [...result.failed, ...removed.failed]
  o.unrestoredSecrets = failed.map((f) => ({ ...ref(f), error: f.error }))
  o.updatedSecrets = o.unrestoredSecrets.map((f) => ({ scope: f.scope, name: f.name }))
  if (result.written.length > 0) {
    o.changed.unshift(
      `CI secrets set to the new values, then written back to the old values: ${restored.map(key).join(', ')}`
    )
  }
  if (removed.deleted.length > 0) {
    o.changed.push(
      `CI secrets this run had created deleted again: ${o.removedSecrets.map(key).join(', ')}`
    )
  }
  if (failed.length > 0) {
    o.mismatch = `CI and production DISAGREE: ${o.unrestoredSecrets.map(key).join(', ')} may still hold the new value while production runs on the old one. Re-run the rotation, or set them to the values in ${from} by hand.`
    return {
      ok: false,
      problem: `write back ${o.unrestoredSecrets.map(key).join(', ')}: ${failed.map((f) => f.error).join('; ')}`
    }
  }
  o.stateNow += '; CI secrets are back on the old values'
  return { ok: true }
}

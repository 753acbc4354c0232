// Which CI secrets a rotation writes (pure): only where a name already lives,
// unless create-missing; and no copy of a rotated name may stay behind where
// a deploy would read it.

import { scopeLabel, type SecretScope } from '../config.js'
import type { SecretInventory } from './inventory.js'

export interface PlannedWrite {
  scope: SecretScope
  name: string
  /** The scope does not hold the name yet: this run creates it (create-missing). */
  create: boolean
}

export interface Placement {
  writes: PlannedWrite[]
  /** Listed scopes skipped because they do not hold a name. */
  notices: string[]
  /** Refusals, each naming the places and the input that resolves it. */
  problems: string[]
}

export interface PlacementInput {
  scopes: SecretScope[]
  /** CI secret names, in the keys input's order. */
  names: string[]
  inventory: SecretInventory
  createMissing: boolean
  repository: string
}

export function planPlacement(input: PlacementInput): Placement {
  const { scopes, inventory, createMissing, repository } = input
  const writes: PlannedWrite[] = []
  const notices: string[] = []
  const problems: string[] = []
  const names = input.names.map((n) => n.toUpperCase())

  for (const scope of scopes) {
    const held = inventory.held.get(scopeLabel(scope)) ?? new Set<string>()
    const missing: string[] = []
    for (const name of names) {
      if (held.has(name)) writes.push({ scope, name, create: false })
      else if (createMissing) writes.push({ scope, name, create: true })
      else missing.push(name)
    }
    if (missing.length > 0) {
      notices.push(
        `${scopeLabel(scope)} holds no ${missing.join(', ')}: skipped there (create-missing is false, so no secret is created where none was)`
      )
    }
  }

  for (const name of names) {
    if (writes.some((w) => w.name === name)) continue
    problems.push(
      `${name} is held by none of the listed scopes (${scopes.map(scopeLabel).join(', ')}), so the new value would reach no deployment: list the environment that holds it in environments, or set create-missing: true for a first set-up`
    )
  }

  for (const { environment, names: held } of inventory.unlisted) {
    problems.push(
      `environment ${environment} holds ${held.join(', ')} but is not listed in environments: a deploy from it would push the old value back. List it in environments, or name it in ignore-environments when it holds another app's secret`
    )
  }

  for (const name of inventory.organization) {
    const repositoryWrites = writes.some((w) => w.scope.kind === 'repository' && w.name === name)
    if (repositoryWrites) continue
    problems.push(
      `organization secret ${name} is visible to ${repository}, and the repository holds no ${name} of its own that this run updates, so every job outside the listed environments reads the organization's old value: give the repository its own copy (repository-secrets: true with create-missing: true), or remove ${repository} from that organization secret's repositories`
    )
  }

  return { writes, notices, problems }
}

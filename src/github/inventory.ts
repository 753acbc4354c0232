// Where the rotated secret names live today: the listed scopes, every other
// environment of the repository, and the organization secrets it can see.
// Names only: GitHub never returns a secret's value.

import { scopeLabel, type SecretScope } from '../config.js'
import { describeError, errorStatus, isRateLimited, type Octokit } from './client.js'
import { GitHubPreflightError } from './secrets.js'

export interface SecretInventory {
  /** Listed scope label → the rotated names it holds. */
  held: Map<string, Set<string>>
  /** Environments not listed and not ignored, with the rotated names they hold. */
  unlisted: Array<{ environment: string; names: string[] }>
  /** Environments named in ignore-environments that hold a rotated name. */
  ignored: Array<{ environment: string; names: string[] }>
  /** Rotated names that exist as organization secrets visible to the repository. */
  organization: string[]
}

async function secretNames(
  octokit: Octokit,
  owner: string,
  repo: string,
  scope: SecretScope
): Promise<Set<string>> {
  const list =
    scope.kind === 'repository'
      ? await octokit.paginate('GET /repos/{owner}/{repo}/actions/secrets', {
          owner,
          repo,
          per_page: 100
        })
      : await octokit.paginate(
          'GET /repos/{owner}/{repo}/environments/{environment_name}/secrets',
          {
            owner,
            repo,
            environment_name: scope.name,
            per_page: 100
          }
        )
  return new Set((list as Array<{ name: string }>).map((s) => s.name.toUpperCase()))
}

function listProblem(what: string, permission: string, error: unknown): string {
  const status = errorStatus(error)
  if (status === 401) return `${what}: the token was rejected (401 Bad credentials)`
  if (isRateLimited(error))
    return `${what}: GitHub's rate limit, retries ran out (${describeError(error)})`
  if (status === 403) {
    return `${what}: access refused (403): the token lacks the "${permission}" repository permission (read), which the check for stale copies needs`
  }
  return `${what}: ${describeError(error)}`
}

/**
 * Reads which scopes hold the rotated names. Throws GitHubPreflightError
 * listing every list that could not be read: a place that cannot be checked
 * could hold a stale copy, so it is never assumed empty.
 */
export async function readInventory(
  octokit: Octokit,
  owner: string,
  repo: string,
  listed: SecretScope[],
  names: string[],
  ignoreEnvironments: string[]
): Promise<SecretInventory> {
  const rotated = new Set(names.map((n) => n.toUpperCase()))
  const problems: string[] = []
  const inventory: SecretInventory = {
    held: new Map(),
    unlisted: [],
    ignored: [],
    organization: []
  }
  const listedEnvironments = new Set(
    listed.flatMap((s) => (s.kind === 'environment' ? [s.name.toLowerCase()] : []))
  )
  const ignored = new Set(ignoreEnvironments.map((e) => e.toLowerCase()))

  const listedScopes = listed.map(async (scope) => {
    try {
      const held = await secretNames(octokit, owner, repo, scope)
      inventory.held.set(scopeLabel(scope), new Set([...rotated].filter((n) => held.has(n))))
    } catch (error) {
      problems.push(
        listProblem(
          `listing the secrets of ${scopeLabel(scope)}`,
          scope.kind === 'repository' ? 'Secrets' : 'Environments',
          error
        )
      )
    }
  })

  const otherEnvironments = (async () => {
    let environments: Array<{ name: string }>
    try {
      environments = (await octokit.paginate('GET /repos/{owner}/{repo}/environments', {
        owner,
        repo,
        per_page: 100
      })) as Array<{ name: string }>
    } catch (error) {
      problems.push(
        listProblem(`listing the environments of ${owner}/${repo}`, 'Environments', error)
      )
      return
    }
    await Promise.all(
      environments
        .filter((e) => !listedEnvironments.has(e.name.toLowerCase()))
        .map(async (e) => {
          try {
            const held = await secretNames(octokit, owner, repo, {
              kind: 'environment',
              name: e.name
            })
            const found = [...rotated].filter((n) => held.has(n))
            if (found.length === 0) return
            const entry = { environment: e.name, names: found }
            if (ignored.has(e.name.toLowerCase())) inventory.ignored.push(entry)
            else inventory.unlisted.push(entry)
          } catch (error) {
            problems.push(
              listProblem(
                `listing the secrets of the unlisted environment ${e.name}`,
                'Environments',
                error
              )
            )
          }
        })
    )
  })()

  const organization = (async () => {
    try {
      const secrets = (await octokit.paginate(
        'GET /repos/{owner}/{repo}/actions/organization-secrets',
        { owner, repo, per_page: 100 }
      )) as Array<{ name: string }>
      inventory.organization = secrets
        .map((s) => s.name.toUpperCase())
        .filter((n) => rotated.has(n))
    } catch (error) {
      // A repository owned by a user has no organization secrets.
      if (errorStatus(error) === 404) return
      problems.push(
        listProblem(
          `listing the organization secrets visible to ${owner}/${repo}`,
          'Secrets',
          error
        )
      )
    }
  })()

  await Promise.all([...listedScopes, otherEnvironments, organization])
  if (problems.length > 0) throw new GitHubPreflightError(problems)
  const byName = (a: { environment: string }, b: { environment: string }): number =>
    a.environment.localeCompare(b.environment)
  inventory.unlisted.sort(byName)
  inventory.ignored.sort(byName)
  return inventory
}

// Preflight of the secret scopes (each scope's own public key, the token's
// rights) and the sealed writes themselves.

import * as core from '@actions/core'
import { scopeLabel, type SecretScope } from '../config.js'
import { describeError, errorHeader, errorStatus, isRateLimited, type Octokit } from './client.js'
import { sealSecret } from './seal.js'

export interface ScopeKey {
  scope: SecretScope
  keyId: string
  key: string
}

export interface SecretWrite {
  scope: SecretScope
  name: string
  value: string
}

export interface WrittenSecret {
  scope: SecretScope
  name: string
}

export interface FailedSecret {
  scope: SecretScope
  name: string
  error: string
  /**
   * The answer was lost or was a server error after retries: GitHub may have
   * applied the write. False only when GitHub refused it (4xx) or it was
   * never sent.
   */
  ambiguous: boolean
}

export interface WriteResult {
  written: WrittenSecret[]
  failed: FailedSecret[]
}

export interface WriteOptions {
  /** Writes in flight at once. Default 4. */
  concurrency?: number
  /** Called after each successful write, as it happens. */
  onWritten?: (written: WrittenSecret) => void
}

/** Preflight found problems; nothing has been written. `problems` lists each one. */
export class GitHubPreflightError extends Error {
  constructor(readonly problems: string[]) {
    super(
      `GitHub preflight failed, nothing was written to GitHub (${problems.length} problem${
        problems.length === 1 ? '' : 's'
      }):\n${problems.map((p) => `- ${p}`).join('\n')}`
    )
    this.name = 'GitHubPreflightError'
  }
}

const PAT_HINT =
  'The workflow GITHUB_TOKEN cannot write Actions secrets: pass a fine-grained personal access token or a GitHub App token as secrets-token'

function badToken(owner: string, repo: string): string {
  return `the token was rejected for ${owner}/${repo} (401 Bad credentials): it is invalid, expired or revoked`
}

function repoMissing(owner: string, repo: string): string {
  return `repository ${owner}/${repo} does not exist or the token cannot see it (404): check the repository input and that the token has access to this repository`
}

function accepted(error: unknown): string {
  const header = errorHeader(error, 'x-accepted-github-permissions')
  return header ? ` (GitHub accepts: ${header})` : ''
}

/** Fetches every scope's public key in parallel; throws GitHubPreflightError listing all problems. */
export async function preflightSecretScopes(
  octokit: Octokit,
  owner: string,
  repo: string,
  scopes: SecretScope[]
): Promise<ScopeKey[]> {
  let repoVisible: Promise<boolean> | undefined
  const repositoryVisible = (): Promise<boolean> =>
    (repoVisible ??= octokit
      .request('GET /repos/{owner}/{repo}', { owner, repo })
      .then(() => true)
      .catch((error: unknown) => errorStatus(error) !== 404))

  const results = await Promise.all(
    scopes.map(async (scope): Promise<ScopeKey | string> => {
      try {
        const response =
          scope.kind === 'repository'
            ? await octokit.request('GET /repos/{owner}/{repo}/actions/secrets/public-key', {
                owner,
                repo
              })
            : await octokit.request(
                'GET /repos/{owner}/{repo}/environments/{environment_name}/secrets/public-key',
                { owner, repo, environment_name: scope.name }
              )
        const { key_id: keyId, key } = response.data as { key_id?: unknown; key?: unknown }
        if (typeof keyId !== 'string' || typeof key !== 'string' || keyId === '' || key === '') {
          return `${scopeLabel(scope)}: GitHub answered without a public key (key_id and key expected)`
        }
        const scopes = response.headers['x-oauth-scopes']
        if (typeof scopes === 'string' && !/(^|[,\s])repo([,\s]|$)/.test(scopes)) {
          return `${scopeLabel(scope)}: the classic token's scopes (${scopes || 'none'}) do not include "repo", which writing secrets needs`
        }
        return { scope, keyId, key }
      } catch (error) {
        const status = errorStatus(error)
        if (status === 401) return badToken(owner, repo)
        if (isRateLimited(error)) {
          return `${scopeLabel(scope)}: reading the public key hit GitHub's rate limit and retries ran out (${describeError(error)}); try again later`
        }
        if (scope.kind === 'repository') {
          if (status === 403) {
            return `repository secrets of ${owner}/${repo}: the token may not read the repository's public key (403): it lacks the "Secrets" repository permission (read and write)${accepted(error)}. ${PAT_HINT}`
          }
          if (status === 404) return repoMissing(owner, repo)
        } else {
          if (status === 403) {
            return `secrets of environment ${scope.name}: the token may not read the environment's public key (403): it lacks the "Environments" repository permission (read and write), which environment secrets need${accepted(error)}. ${PAT_HINT}`
          }
          if (status === 404) {
            return (await repositoryVisible())
              ? `environment ${scope.name} does not exist in ${owner}/${repo} (create it under Settings → Environments, or fix the environments input)`
              : repoMissing(owner, repo)
          }
        }
        return `${scopeLabel(scope)}: reading the public key failed: ${describeError(error)}`
      }
    })
  )

  const problems = [...new Set(results.filter((r): r is string => typeof r === 'string'))]
  if (problems.length > 0) throw new GitHubPreflightError(problems)
  return results as ScopeKey[]
}

/** Checks the token may read (and so, for a fine-grained token, likely write) repository variables. */
export async function preflightVariables(
  octokit: Octokit,
  owner: string,
  repo: string,
  name: string
): Promise<{ exists: boolean }> {
  try {
    await octokit.request('GET /repos/{owner}/{repo}/actions/variables/{name}', {
      owner,
      repo,
      name
    })
    return { exists: true }
  } catch (error) {
    const status = errorStatus(error)
    if (status === 404) return { exists: false }
    if (status === 401) throw new GitHubPreflightError([badToken(owner, repo)])
    if (status === 403 && !isRateLimited(error)) {
      throw new GitHubPreflightError([
        `repository variable ${name} of ${owner}/${repo}: access refused (403): the token lacks the "Variables" repository permission (read and write)${accepted(error)}`
      ])
    }
    throw new GitHubPreflightError([
      `repository variable ${name} of ${owner}/${repo}: check failed: ${describeError(error)}`
    ])
  }
}

function writeError(write: SecretWrite, error: unknown): string {
  const status = errorStatus(error)
  const base = describeError(error)
  if (isRateLimited(error)) return `${base} (rate limited; retries ran out)`
  if (status === 403) {
    const permission = write.scope.kind === 'repository' ? 'Secrets' : 'Environments'
    return `${base}: the token lacks write access ("${permission}" read and write)${accepted(error)}`
  }
  if (status === 422) return `${base} (the scope's public key may have changed since preflight)`
  return base
}

/**
 * Seals each value with its own scope's key and PUTs it. Never throws for a
 * failed write: every write ends in `written` or `failed`, in input order, so
 * the caller knows exactly what changed and can compensate.
 */
export async function writeSecrets(
  octokit: Octokit,
  owner: string,
  repo: string,
  keys: ScopeKey[],
  writes: SecretWrite[],
  opts: WriteOptions = {}
): Promise<WriteResult> {
  const byScope = new Map(keys.map((k) => [scopeLabel(k.scope), k]))
  const outcome: Array<{ ok: true } | { ok: false; error: string; ambiguous: boolean }> = new Array(
    writes.length
  )
  const concurrency = Math.max(1, Math.floor(opts.concurrency ?? 4))

  const writeOne = async (write: SecretWrite): Promise<void> => {
    const key = byScope.get(scopeLabel(write.scope))
    if (key === undefined) {
      throw new NotSent(`no public key for ${scopeLabel(write.scope)} (it was not preflighted)`)
    }
    let encrypted: string
    try {
      encrypted = await sealSecret(write.value, key.key)
    } catch (error) {
      throw new NotSent(`sealing failed: ${(error as Error).message}`)
    }
    const body = {
      owner,
      repo,
      secret_name: write.name,
      encrypted_value: encrypted,
      key_id: key.keyId
    }
    if (write.scope.kind === 'repository') {
      await octokit.request('PUT /repos/{owner}/{repo}/actions/secrets/{secret_name}', body)
    } else {
      await octokit.request(
        'PUT /repos/{owner}/{repo}/environments/{environment_name}/secrets/{secret_name}',
        { ...body, environment_name: write.scope.name }
      )
    }
  }

  let next = 0
  const worker = async (): Promise<void> => {
    while (next < writes.length) {
      const index = next++
      const write = writes[index]
      try {
        await writeOne(write)
        outcome[index] = { ok: true }
      } catch (error) {
        const notSent = error instanceof NotSent
        outcome[index] = {
          ok: false,
          error: notSent ? error.message : writeError(write, error),
          ambiguous: !notSent && isAmbiguous(error)
        }
        continue
      }
      if (opts.onWritten) {
        try {
          opts.onWritten({ scope: write.scope, name: write.name })
        } catch (error) {
          core.warning(`onWritten callback failed for ${write.name}: ${(error as Error).message}`)
        }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, writes.length) }, worker))

  const result: WriteResult = { written: [], failed: [] }
  writes.forEach((write, i) => {
    const o = outcome[i]
    if (o.ok) result.written.push({ scope: write.scope, name: write.name })
    else
      result.failed.push({
        scope: write.scope,
        name: write.name,
        error: o.error,
        ambiguous: o.ambiguous
      })
  })
  return result
}

/** A write that failed before any request was sent. */
class NotSent extends Error {}

/**
 * Whether a failed request may still have been applied: no answer at all
 * (reset, timeout) or a server error. A 4xx is GitHub refusing it.
 */
export function isAmbiguous(error: unknown): boolean {
  const status = errorStatus(error)
  if (status === undefined) return true
  return status >= 500 || status === 408
}

export interface DeleteResult {
  deleted: WrittenSecret[]
  failed: FailedSecret[]
}

/**
 * Deletes secrets this run created. A secret that is already gone (404)
 * counts as deleted: the scope is back to holding no such name.
 */
export async function deleteSecrets(
  octokit: Octokit,
  owner: string,
  repo: string,
  list: WrittenSecret[]
): Promise<DeleteResult> {
  const result: DeleteResult = { deleted: [], failed: [] }
  for (const item of list) {
    try {
      if (item.scope.kind === 'repository') {
        await octokit.request('DELETE /repos/{owner}/{repo}/actions/secrets/{secret_name}', {
          owner,
          repo,
          secret_name: item.name
        })
      } else {
        await octokit.request(
          'DELETE /repos/{owner}/{repo}/environments/{environment_name}/secrets/{secret_name}',
          { owner, repo, environment_name: item.scope.name, secret_name: item.name }
        )
      }
      result.deleted.push(item)
    } catch (error) {
      if (errorStatus(error) === 404) result.deleted.push(item)
      else
        result.failed.push({
          ...item,
          error: describeError(error),
          ambiguous: isAmbiguous(error)
        })
    }
  }
  return result
}

/** "repository: A, B; environment:prod: A" — names and scopes only. */
export function describeSecrets(list: Array<{ scope: SecretScope; name: string }>): string {
  if (list.length === 0) return 'none'
  const groups = new Map<string, string[]>()
  for (const item of list) {
    const label = scopeLabel(item.scope)
    groups.set(label, [...(groups.get(label) ?? []), item.name])
  }
  return [...groups].map(([label, names]) => `${label}: ${names.join(', ')}`).join('; ')
}

// The secrets token's remaining life, where GitHub reports it, and a check
// that it still works before compensation depends on it.

import { describeError, errorStatus, type Octokit } from './client.js'

/**
 * GitHub's `github-authentication-token-expiration` header, e.g.
 * "2026-12-05 09:12:00 UTC" or "2026-12-05 09:12:00 -0700".
 */
export function parseTokenExpiry(header: string | undefined): Date | undefined {
  if (header === undefined) return undefined
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(?::\d{2})?)\s*(UTC|Z|[+-]\d{2}:?\d{2})?$/.exec(
    header.trim()
  )
  if (!m) return undefined
  const zone =
    m[3] === undefined || m[3] === 'UTC' || m[3] === 'Z'
      ? 'Z'
      : m[3].replace(/^([+-]\d{2}):?(\d{2})$/, '$1:$2')
  const time = m[2].length === 5 ? `${m[2]}:00` : m[2]
  const date = new Date(`${m[1]}T${time}${zone}`)
  return Number.isNaN(date.getTime()) ? undefined : date
}

/** A warning when the token may expire before the run's worst case ends. */
export function expiryWarning(
  expiresAt: Date | undefined,
  now: Date,
  worstCaseSeconds: number
): string | undefined {
  if (expiresAt === undefined) return undefined
  const left = Math.floor((expiresAt.getTime() - now.getTime()) / 1000)
  if (left >= worstCaseSeconds) return undefined
  const minutes = (s: number): string => `${Math.max(0, Math.round(s / 60))} min`
  return `secrets-token expires at ${expiresAt.toISOString()} (in ${minutes(left)}), before this run's worst case ends (${minutes(worstCaseSeconds)}: every host step and the rollback at their timeouts): if it expires first, the CI secrets cannot be written back after a rollback. Use a token that lives longer (a GitHub App token lasts 1 hour from when it was created) or lower health-timeout`
}

export type TokenCheck = { ok: true; expiresAt?: Date } | { ok: false; reason: string }

/** One cheap authenticated read: is the token still accepted, and until when? */
export async function checkToken(
  octokit: Octokit,
  owner: string,
  repo: string
): Promise<TokenCheck> {
  try {
    const response = await octokit.request('GET /repos/{owner}/{repo}', { owner, repo })
    const header = response.headers['github-authentication-token-expiration']
    return {
      ok: true,
      expiresAt: parseTokenExpiry(typeof header === 'string' ? header : undefined)
    }
  } catch (error) {
    return errorStatus(error) === 401
      ? { ok: false, reason: 'secrets-token was rejected (401): it expired or was revoked' }
      : { ok: false, reason: `checking secrets-token failed: ${describeError(error)}` }
  }
}

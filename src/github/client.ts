// Octokit for the secrets and report calls: @actions/github's getOctokit (so
// proxies and GHES work as in any action) plus retry and throttling.

import * as core from '@actions/core'
import { getOctokit } from '@actions/github'
import { retry } from '@octokit/plugin-retry'
import { throttling } from '@octokit/plugin-throttling'
import Bottleneck from 'bottleneck/light.js'

export type Octokit = ReturnType<typeof getOctokit>

export interface ClientOptions {
  /** API base URL; defaults to GITHUB_API_URL (read now, not at import time), else api.github.com. */
  baseUrl?: string
  /** Milliseconds per backoff unit of the retry plugin (5xx): waits 1, 4, 9 units. Default 1000. */
  retryBackoffMs?: number
  /** Minimum spacing between starts of write requests (PUT/POST/PATCH/DELETE). Default 100 ms. */
  writeSpacingMs?: number
  /** Minimum spacing between requests that notify people (issue creation). Default 3000 ms. */
  notificationSpacingMs?: number
  /** Milliseconds per second of a rate limit's retry-after / reset wait. Default 1000 (tests shrink it). */
  rateLimitSecondMs?: number
}

/** Retries of a request after a primary or a secondary rate limit. */
export const RATE_LIMIT_RETRIES = 2

export function createOctokit(token: string, options: ClientOptions = {}): Octokit {
  const baseUrl = (
    options.baseUrl ??
    (process.env.GITHUB_API_URL || undefined) ??
    'https://api.github.com'
  ).replace(/\/+$/, '')
  return getOctokit(
    token,
    {
      // @actions/github reads GITHUB_API_URL once, when first imported; pass it explicitly.
      baseUrl,
      retry: {
        retries: 3,
        retryAfterBaseValue: options.retryBackoffMs ?? 1000,
        // 429 is left to the throttling plugin, which honours retry-after.
        doNotRetry: [400, 401, 403, 404, 409, 410, 422, 429, 451]
      },
      throttle: {
        id: 'rotate-jwt-secrets',
        retryAfterBaseValue: options.rateLimitSecondMs ?? 1000,
        // The plugin's shared default spaces writes a full second apart; a few
        // secrets per run are far from GitHub's content-creation limits.
        write: new Bottleneck.Group({ maxConcurrent: 1, minTime: options.writeSpacingMs ?? 100 }),
        notifications: new Bottleneck.Group({
          maxConcurrent: 1,
          minTime: options.notificationSpacingMs ?? 3000
        }),
        onRateLimit: (retryAfter, request, _octokit, retryCount) => {
          const again = retryCount < RATE_LIMIT_RETRIES
          core.warning(
            `GitHub API rate limit reached for ${request.method} ${request.url}: ${
              again
                ? `retrying in ${retryAfter}s (retry ${retryCount + 1} of ${RATE_LIMIT_RETRIES})`
                : `giving up after ${retryCount} retries`
            }`
          )
          return again
        },
        onSecondaryRateLimit: (retryAfter, request, _octokit, retryCount) => {
          const again = retryCount < RATE_LIMIT_RETRIES
          core.warning(
            `GitHub API secondary rate limit for ${request.method} ${request.url}: ${
              again
                ? `retrying after ${retryAfter}s as retry-after asks (retry ${retryCount + 1} of ${RATE_LIMIT_RETRIES})`
                : `giving up after ${retryCount} retries`
            }`
          )
          return again
        }
      }
    },
    retry,
    throttling
  )
}

/** HTTP status of an Octokit RequestError (or undefined for anything else). */
export function errorStatus(error: unknown): number | undefined {
  const status = (error as { status?: unknown } | null)?.status
  return typeof status === 'number' ? status : undefined
}

/** Header value of an Octokit RequestError's response. */
export function errorHeader(error: unknown, name: string): string | undefined {
  const headers = (error as { response?: { headers?: Record<string, unknown> } } | null)?.response
    ?.headers
  const value = headers?.[name.toLowerCase()]
  return typeof value === 'string' ? value : undefined
}

/**
 * A short description of a failed call: status and GitHub's message. Octokit's
 * messages carry the response message and documentation URL only, never the
 * request body, so no (sealed) value ends up here.
 */
export function describeError(error: unknown): string {
  const status = errorStatus(error)
  const data = (error as { response?: { data?: unknown } } | null)?.response?.data
  let message =
    data !== null &&
    typeof data === 'object' &&
    typeof (data as { message?: unknown }).message === 'string'
      ? (data as { message: string }).message
      : error instanceof Error
        ? error.message
        : String(error)
  message = message.replace(/\s+/g, ' ').trim()
  return status === undefined ? message : `HTTP ${status}: ${message}`
}

/** A 403/429 that is GitHub's primary or secondary rate limit, not a missing permission. */
export function isRateLimited(error: unknown): boolean {
  const status = errorStatus(error)
  if (status !== 403 && status !== 429) return false
  if (status === 429 || errorHeader(error, 'x-ratelimit-remaining') === '0') return true
  return /rate limit/i.test(describeError(error))
}

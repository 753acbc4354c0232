// The rotation report issue.

import * as core from '@actions/core'
import { describeError, errorStatus, isRateLimited, type Octokit } from './client.js'
import { GitHubPreflightError, isAmbiguous } from './secrets.js'

export interface IssueInput {
  title: string
  body: string
  labels?: string[]
  assignees?: string[]
  /**
   * Identifies this run's issue (e.g. the run id and attempt). Written into
   * the body as a hidden comment; before creating again after a lost answer,
   * the issue carrying it is looked up and reused, so one run opens one issue.
   */
  marker?: string
}

export interface OpenIssueOptions {
  /** Creation attempts after a lost answer or a server error. Default 3. */
  attempts?: number
  /** Milliseconds before the n-th retry: n² units. Default 1000. */
  backoffMs?: number
}

/** The hidden line that marks a run's issue. */
export function markerComment(marker: string): string {
  return `<!-- rotate-jwt-secrets: ${marker.replace(/--+/g, '-')} -->`
}

/** This run's issue, if an earlier attempt created it although its answer was lost. */
export async function findMarkedIssue(
  octokit: Octokit,
  owner: string,
  repo: string,
  marker: string
): Promise<{ number: number; html_url: string } | undefined> {
  const comment = markerComment(marker)
  const recent = await octokit.request('GET /repos/{owner}/{repo}/issues', {
    owner,
    repo,
    state: 'all',
    sort: 'created',
    direction: 'desc',
    per_page: 50
  })
  return recent.data.find((issue) => (issue.body ?? '').includes(comment))
}

export interface OpenedIssue {
  number: number
  url: string
  /** Problems that did not stop the issue from being opened (e.g. assignees dropped). */
  warnings: string[]
}

export async function openIssue(
  octokit: Octokit,
  owner: string,
  repo: string,
  input: IssueInput,
  options: OpenIssueOptions = {}
): Promise<OpenedIssue> {
  const labels = input.labels ?? []
  const assignees = input.assignees ?? []
  const body = input.marker ? `${input.body}\n\n${markerComment(input.marker)}` : input.body
  const attempts = Math.max(1, options.attempts ?? 3)
  const backoffMs = options.backoffMs ?? 1000
  const post = (withAssignees: boolean) =>
    octokit.request('POST /repos/{owner}/{repo}/issues', {
      owner,
      repo,
      title: input.title,
      body,
      ...(labels.length > 0 ? { labels } : {}),
      ...(withAssignees && assignees.length > 0 ? { assignees } : {}),
      // Retried here, not by the retry plugin: a lost answer may hide a
      // created issue, which must be found before posting again.
      request: { retries: 0 }
    })
  type Created = { number: number; html_url: string }
  const create = async (withAssignees: boolean): Promise<Created> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return (await post(withAssignees)).data
      } catch (error) {
        if (!isAmbiguous(error) || attempt >= attempts) throw error
        core.warning(
          `opening the report issue: ${describeError(error)}; looking for it before trying again (attempt ${attempt + 1} of ${attempts})`
        )
        await new Promise((r) => setTimeout(r, attempt * attempt * backoffMs))
        if (input.marker) {
          const found = await findMarkedIssue(octokit, owner, repo, input.marker).catch(
            () => undefined
          )
          if (found) {
            core.info(`the issue had been opened after all (#${found.number}): reusing it`)
            return found
          }
        }
      }
    }
  }
  const warnings: string[] = []
  let response: Created
  try {
    try {
      response = await create(true)
    } catch (error) {
      if (errorStatus(error) !== 422 || assignees.length === 0) throw error
      const warning = `opening the issue with assignees ${assignees.join(', ')} failed (${describeError(error)}); opened it without assignees`
      core.warning(warning)
      warnings.push(warning)
      response = await create(false)
    }
  } catch (error) {
    const hint =
      errorStatus(error) === 403 && !isRateLimited(error)
        ? ' (the token lacks the "Issues" permission, read and write)'
        : ''
    throw new Error(
      `opening the report issue in ${owner}/${repo} failed: ${describeError(error)}${hint}; no issue was opened`
    )
  }
  return { number: response.number, url: response.html_url, warnings }
}

/**
 * The report must be able to land: the issue token sees the repository and
 * issues are enabled. (Write access cannot be checked without writing.)
 */
export async function preflightIssues(
  octokit: Octokit,
  owner: string,
  repo: string
): Promise<void> {
  let hasIssues: boolean | undefined
  try {
    const response = await octokit.request('GET /repos/{owner}/{repo}', { owner, repo })
    hasIssues = response.data.has_issues
  } catch (error) {
    const status = errorStatus(error)
    const problem =
      status === 401
        ? 'github-token was rejected (401 Bad credentials): it is invalid or expired'
        : status === 404 || status === 403
          ? `github-token cannot see ${owner}/${repo} (${status})`
          : `checking github-token against ${owner}/${repo} failed: ${describeError(error)}`
    throw new GitHubPreflightError([
      `${problem}; the report issue could not be opened (or set create-issue: false)`
    ])
  }
  if (hasIssues === false) {
    throw new GitHubPreflightError([
      `issues are disabled in ${owner}/${repo}: the report issue could not be opened; enable issues or set create-issue: false`
    ])
  }
}

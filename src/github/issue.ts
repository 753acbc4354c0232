// The rotation report issue.

import * as core from '@actions/core'
import { describeError, errorStatus, isRateLimited, type Octokit } from './client.js'
import { GitHubPreflightError } from './secrets.js'

export interface IssueInput {
  title: string
  body: string
  labels?: string[]
  assignees?: string[]
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
  input: IssueInput
): Promise<OpenedIssue> {
  const labels = input.labels ?? []
  const assignees = input.assignees ?? []
  const create = (withAssignees: boolean) =>
    octokit.request('POST /repos/{owner}/{repo}/issues', {
      owner,
      repo,
      title: input.title,
      body: input.body,
      ...(labels.length > 0 ? { labels } : {}),
      ...(withAssignees && assignees.length > 0 ? { assignees } : {})
    })
  const warnings: string[] = []
  let response: Awaited<ReturnType<typeof create>>
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
  return { number: response.data.number, url: response.data.html_url, warnings }
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

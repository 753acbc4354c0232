// The rotation report issue.

import * as core from '@actions/core'
import { describeError, errorStatus, isRateLimited, type Octokit } from './client.js'

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

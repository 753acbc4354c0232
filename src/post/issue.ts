// The post step replaces a provisional report issue (one the main step opened
// before it could see the host's end) with the final one: one issue per run.
import { describeError, type Octokit } from '../github/client.js'

export async function updateIssue(
  octokit: Octokit,
  owner: string,
  repo: string,
  issueNumber: number,
  input: { title: string; body: string }
): Promise<{ number: number; url: string }> {
  try {
    const response = await octokit.request('PATCH /repos/{owner}/{repo}/issues/{issue_number}', {
      owner,
      repo,
      issue_number: issueNumber,
      title: input.title,
      body: input.body
    })
    return { number: response.data.number, url: response.data.html_url }
  } catch (error) {
    throw new Error(
      `updating report issue #${issueNumber} in ${owner}/${repo} failed: ${describeError(error)}; it still shows the main step's provisional report`
    )
  }
}

/**
 * The issue the main step opened for this run, if GitHub has one: for a main
 * step killed while GitHub was creating it (request sent, answer lost), which
 * the saved state cannot know. Matched by the exact rotation date (to the
 * millisecond) and the run URL in its body. Undefined when none matches;
 * throws when the list cannot be read.
 */
export async function findRunIssue(
  octokit: Octokit,
  owner: string,
  repo: string,
  run: { rotatedAt: string; runUrl?: string; labels: string[] }
): Promise<{ number: number; url: string } | undefined> {
  const response = await octokit.request('GET /repos/{owner}/{repo}/issues', {
    owner,
    repo,
    state: 'all',
    since: run.rotatedAt,
    per_page: 100,
    ...(run.labels.length > 0 ? { labels: run.labels.join(',') } : {})
  })
  const found = response.data.find(
    (issue) =>
      issue.pull_request === undefined &&
      (issue.body ?? '').includes(`\`${run.rotatedAt}\``) &&
      (run.runUrl === undefined || (issue.body ?? '').includes(run.runUrl))
  )
  return found ? { number: found.number, url: found.html_url } : undefined
}

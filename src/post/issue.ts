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

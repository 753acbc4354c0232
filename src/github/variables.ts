// Repository variables: update, or create when missing.

import { describeError, errorStatus, isRateLimited, type Octokit } from './client.js'

/** Sets a repository variable; returns whether it was created or updated. */
export async function setRepositoryVariable(
  octokit: Octokit,
  owner: string,
  repo: string,
  name: string,
  value: string
): Promise<'created' | 'updated'> {
  const update = (): Promise<unknown> =>
    octokit.request('PATCH /repos/{owner}/{repo}/actions/variables/{name}', {
      owner,
      repo,
      name,
      value
    })
  try {
    try {
      await update()
      return 'updated'
    } catch (error) {
      if (errorStatus(error) !== 404) throw error
    }
    try {
      await octokit.request('POST /repos/{owner}/{repo}/actions/variables', {
        owner,
        repo,
        name,
        value
      })
      return 'created'
    } catch (error) {
      // Created by someone else in between: update it after all.
      if (errorStatus(error) !== 409) throw error
      await update()
      return 'updated'
    }
  } catch (error) {
    const hint =
      errorStatus(error) === 403 && !isRateLimited(error)
        ? ' (the token lacks the "Variables" repository permission, read and write)'
        : ''
    throw new Error(
      `setting repository variable ${name} of ${owner}/${repo} failed: ${describeError(error)}${hint}; the variable was not changed`
    )
  }
}

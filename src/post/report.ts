// The post step's report: the rotation-date variable after a success, the one
// issue of the run (the main step's provisional one completed, or found by the
// run's marker, or opened) and the job summary.
import * as core from '@actions/core'
import type { Config } from '../config.js'
import { createOctokit, describeError } from '../github/client.js'
import { findMarkedIssue, markerComment, openIssue, runIssueMarker } from '../github/issue.js'
import { setRepositoryVariable } from '../github/variables.js'
import type { Outcome } from '../outcome.js'
import { issueBody, issueTitle } from '../report/issue.js'
import { writeJobSummary } from '../report/summary.js'
import { updateIssue } from './issue.js'
import type { RunState } from './state.js'

export async function report(
  config: Config,
  state: RunState,
  o: Outcome,
  problems: string[]
): Promise<void> {
  if (
    o.result === 'success' &&
    config.rotationDateVariable !== '' &&
    config.mode !== 'retire-previous' &&
    !config.recover
  ) {
    try {
      await setRepositoryVariable(
        createOctokit(config.secretsToken),
        config.owner,
        config.repo,
        config.rotationDateVariable,
        o.rotatedAt
      )
      o.rotationDateVariable = { name: config.rotationDateVariable, status: 'set' }
    } catch (error) {
      o.rotationDateVariable = {
        name: config.rotationDateVariable,
        status: 'failed',
        reason: describeError(error)
      }
      problems.push(`set the variable ${config.rotationDateVariable}: ${describeError(error)}`)
    }
  } else {
    o.rotationDateVariable = {
      name: config.rotationDateVariable,
      status: 'skipped',
      reason:
        config.rotationDateVariable === ''
          ? 'rotation-date-variable is empty'
          : `the rotation did not succeed (${o.result})`
    }
  }
  if (config.createIssue) {
    const octokit = createOctokit(config.githubToken)
    const marker = runIssueMarker(config.owner, config.repo, state.runId)
    try {
      // A main step killed while GitHub created its issue left no record of it.
      let existing = state.issue
      if (!existing) {
        try {
          const found = await findMarkedIssue(octokit, config.owner, config.repo, marker)
          existing = found ? { number: found.number, url: found.html_url } : undefined
          if (existing)
            core.info(`Found this run's issue #${existing.number} (opened by the main step)`)
        } catch (error) {
          core.warning(
            `could not look for an issue the main step may have opened (${describeError(error)}): opening one`
          )
        }
      }
      if (existing) {
        o.issue = await updateIssue(octokit, config.owner, config.repo, existing.number, {
          title: issueTitle(o),
          body: `${issueBody(o)}\n\n${markerComment(marker)}`
        })
        core.info(`Issue #${o.issue.number} now holds the final report: ${o.issue.url}`)
      } else {
        const issue = await openIssue(octokit, config.owner, config.repo, {
          title: issueTitle(o),
          body: issueBody(o),
          labels: config.issueLabels,
          assignees: config.issueAssignees,
          marker
        })
        o.issue = { number: issue.number, url: issue.url }
        core.info(`Issue #${issue.number}: ${issue.url}`)
      }
    } catch (error) {
      problems.push(`write the report issue: ${describeError(error)}`)
    }
  }
  await writeJobSummary(o)
}

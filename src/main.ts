import * as core from '@actions/core'
import { randomBytes } from 'node:crypto'
import { readConfig, type Config } from './config.js'
import { createOctokit, describeError } from './github/client.js'
import { openIssue } from './github/issue.js'
import { setRepositoryVariable } from './github/variables.js'
import type { Outcome } from './outcome.js'
import { issueBody, issueTitle } from './report/issue.js'
import { setOutputs } from './report/outputs.js'
import { writeJobSummary } from './report/summary.js'
import { Rotation, type RunContext } from './rotation.js'

function runContext(signal: AbortSignal): RunContext {
  const env = process.env
  const runId = `${env.GITHUB_RUN_ID ?? 'local'}-${env.GITHUB_RUN_ATTEMPT ?? '1'}-${randomBytes(3).toString('hex')}`
  const runUrl =
    env.GITHUB_RUN_ID && env.GITHUB_REPOSITORY
      ? `${env.GITHUB_SERVER_URL ?? 'https://github.com'}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}`
      : undefined
  const actor = env.GITHUB_TRIGGERING_ACTOR || env.GITHUB_ACTOR || 'unknown'
  const by = `${actor} (${env.GITHUB_EVENT_NAME ?? 'manual'})${runUrl ? ` ${runUrl}` : ''}`.replace(
    /[^\x20-\x7e]/g,
    '?'
  )
  return { run: { id: runId.replace(/[^A-Za-z0-9-]/g, ''), by }, runUrl, actor, signal }
}

/** One issue per run attempt: the run's identity, hidden in the issue body. */
function issueMarker(config: Config): string {
  const env = process.env
  return env.GITHUB_RUN_ID
    ? `${config.owner}/${config.repo} run ${env.GITHUB_RUN_ID} attempt ${env.GITHUB_RUN_ATTEMPT ?? '1'}`
    : `${config.owner}/${config.repo} local run ${randomBytes(6).toString('hex')}`
}

/** Phase 7: the variable, the issue, the summary and the outputs. */
async function report(config: Config, rotation: Rotation): Promise<Outcome> {
  const outcome = rotation.outcome
  await rotation.setRotationDate((name, value) =>
    setRepositoryVariable(
      createOctokit(config.secretsToken),
      config.owner,
      config.repo,
      name,
      value
    )
  )
  if (config.createIssue && !outcome.dryRun) {
    try {
      const issue = await openIssue(createOctokit(config.githubToken), config.owner, config.repo, {
        title: issueTitle(outcome),
        body: issueBody(outcome),
        labels: config.issueLabels,
        assignees: config.issueAssignees,
        marker: issueMarker(config)
      })
      outcome.issue = { number: issue.number, url: issue.url }
      for (const warning of issue.warnings) core.warning(warning)
      core.info(`Issue #${issue.number}: ${issue.url}`)
    } catch (error) {
      core.error(
        `could not open the report issue: ${describeError(error)}. The report is in this job's summary.`
      )
    }
  }
  await writeJobSummary(outcome)
  setOutputs(outcome)
  return outcome
}

export async function run(): Promise<void> {
  let config: Config
  try {
    config = readConfig((name) => core.getInput(name))
  } catch (error) {
    core.setOutput('result', 'failed')
    core.setFailed(`${(error as Error).message}. Nothing was contacted or changed.`)
    return
  }
  for (const value of [
    config.secretsToken,
    config.githubToken,
    config.ssh.privateKey,
    config.ssh.passphrase
  ]) {
    if (value) core.setSecret(value)
  }
  for (const credentials of [config.adminCredentials, config.userCredentials]) {
    if (credentials) core.setSecret(credentials.password)
  }

  const cancel = new AbortController()
  const onSignal = (signal: string) => (): void => {
    core.warning(`${signal} received (workflow cancelled?): stopping without interrupting the host`)
    cancel.abort()
  }
  process.once('SIGINT', onSignal('SIGINT'))
  process.once('SIGTERM', onSignal('SIGTERM'))

  const rotation = new Rotation(config, runContext(cancel.signal))
  const outcome = await rotation.run()
  await core.group('7. Report', () => report(config, rotation))

  if (outcome.result === 'failed' || outcome.result === 'rolled-back') {
    core.setFailed(
      `JWT secret rotation ${outcome.result}: ${outcome.failure ?? 'see the log'}. Changed: ${
        outcome.changed.length > 0 ? outcome.changed.join('; ') : 'nothing'
      }. Now: ${outcome.stateNow}.${outcome.mismatch ? ` ${outcome.mismatch}` : ''}`
    )
  } else {
    core.info(`JWT secret rotation ${outcome.result}. Now: ${outcome.stateNow}.`)
  }
}

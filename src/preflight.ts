// Phase 1 (DESIGN §1): everything that can fail is checked before the first
// change. GitHub and SSH side by side, then the host (which takes the lock);
// every problem of both sides is listed at once.
import * as core from '@actions/core'
import { CiSecrets } from './ci-secrets.js'
import type { Config } from './config.js'
import { createOctokit } from './github/client.js'
import { preflightIssues } from './github/issue.js'
import { preflightVariables } from './github/secrets.js'
import { followDeadlineSeconds, type HostMode } from './host/plan.js'
import { HostRotation, type HostState } from './host/sequence.js'
import { HostSession } from './host/ssh.js'
import { engineLine, hostSteps, restartLineFor } from './host/swarm-plan.js'
import type { Outcome } from './outcome.js'
import type { RunContext } from './rotation.js'
import { forwardingRefusal } from './verify/tunnel-http.js'

/** What preflight took or learned; the caller releases the lock and closes the session. */
export interface Preflighted {
  ci?: CiSecrets
  session?: HostSession
  host?: HostRotation
  hostState?: HostState
  /** Why sshd refuses forwarded channels, when it does. */
  forwardingRefused?: string
}

function mask(value: string): void {
  if (value !== '') core.setSecret(value)
}

/** Throws with `problems` (every one found) when anything would stop the rotation. */
export async function runPreflight(
  c: Config,
  outcome: Outcome,
  context: RunContext,
  hostMode: HostMode,
  into: Preflighted
): Promise<void> {
  const rotatesSecrets = !c.recover && c.mode !== 'retire-previous'
  if (c.mode === 'graceful' && /incident|compromise|leak/i.test(c.reason)) {
    core.warning(
      'mode graceful keeps the OLD secrets valid as *_PREVIOUS until retire-previous runs: after a suspected compromise, rotate with mode immediate instead'
    )
  }
  const octokit = createOctokit(c.secretsToken)
  const ci = new CiSecrets(c, outcome, octokit, context.onProgress)
  into.ci = ci
  // GitHub and SSH are checked side by side; the host lock comes after both.
  // Each GitHub check runs even when another failed: all problems at once.
  const github = (async (): Promise<void> => {
    const problems: string[] = []
    const check = async (body: () => Promise<void>): Promise<void> => {
      try {
        await body()
      } catch (error) {
        problems.push(
          ...((error as { problems?: string[] }).problems ?? [(error as Error).message])
        )
      }
    }
    if (rotatesSecrets || c.recover) {
      const worstCase =
        c.ssh.timeoutSeconds * 3 + followDeadlineSeconds(c, hostSteps(c, hostMode).length)
      await check(() => ci.preflight(worstCase, context.now?.() ?? new Date()))
    }
    if (c.rotationDateVariable !== '' && rotatesSecrets) {
      await check(async () => {
        await preflightVariables(octokit, c.owner, c.repo, c.rotationDateVariable)
      })
    }
    if (c.createIssue && !c.dryRun) {
      await check(async () => {
        await preflightIssues(createOctokit(c.githubToken), c.owner, c.repo)
        core.info(`GitHub: github-token sees ${c.owner}/${c.repo} with issues enabled`)
      })
    }
    if (problems.length > 0) throw Object.assign(new Error(problems.join('; ')), { problems })
  })()
  core.info(`SSH: connecting to ${outcome.host} (host key: ${c.ssh.hostKey.kind})`)
  const [githubCheck, sshCheck] = await Promise.allSettled([github, HostSession.connect(c.ssh)])
  if (sshCheck.status === 'fulfilled') into.session = sshCheck.value
  const problems = [githubCheck, sshCheck].flatMap((check) =>
    check.status === 'rejected'
      ? ((check.reason as { problems?: string[] }).problems ?? [(check.reason as Error).message])
      : []
  )
  // The host is checked whenever SSH works, even when GitHub failed, so one
  // run lists every problem of both sides (the lock it takes is released).
  if (sshCheck.status === 'fulfilled') {
    const session = sshCheck.value
    core.info(
      `SSH: connected, host key ${session.hostFingerprint || '(not verified: insecure skip)'}`
    )
    into.host = new HostRotation(session, c, context.run, hostMode)
    try {
      into.hostState = await into.host.preflight(
        c.keys.map((k) => k.envKey),
        mask
      )
    } catch (error) {
      problems.push(...((error as { problems?: string[] }).problems ?? [(error as Error).message]))
    }
  }
  if (problems.length > 0) throw Object.assign(new Error(problems.join('; ')), { problems })
  if (!into.hostState) throw new Error('host preflight gave no state')
  into.forwardingRefused = await forwardingRefusal(into.session as HostSession, c.loginUrl)
  if (into.forwardingRefused) {
    core.warning(
      `${into.forwardingRefused}: the login checks and the health check from the runner will be skipped after the rotation (the host's own health step still runs)`
    )
  }
  const f = into.hostState.facts
  core.info(engineLine(c, f))
  core.info(`Host: http client ${f.httpClient}, detached with ${into.hostState.detach}, lock taken`)
  core.info(
    `Host: ${into.hostState.envPath} holds ${c.keys.map((k) => k.envKey).join(', ')} and ENCRYPTION_KEY`
  )
  context.onProgress?.({ kind: 'preflight-done', envSha256: into.hostState.envSha256 })
  const targets = into.hostState.targets
  if (!c.recover && targets.length > 0) {
    outcome.restartTargets = targets.map((t) => ({
      service: t.service,
      why: t.reasons.join('; ')
    }))
    core.info(restartLineFor(c, targets))
  }
}

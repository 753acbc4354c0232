// The job summary: a headline, the issue link, then the issue's own sections.
import * as core from '@actions/core'
import type { Outcome, Result } from '../outcome.js'
import { link } from './markdown.js'
import { isRefused, issueTitle, renderBanners, renderSections } from './issue.js'

const RESULT_EMOJI: Record<Result, string> = {
  success: '✅',
  recovered: '🩹',
  'rolled-back': '↩️',
  failed: '❌',
  'dry-run': '🧪'
}

/** One line: emoji, title and, for a refusal, that nothing was changed. */
export function summaryHeadline(o: Outcome): string {
  if (isRefused(o)) return `## 🛑 ${issueTitle(o)} (refused by preflight: nothing was changed)`
  return `## ${RESULT_EMOJI[o.result] ?? '❔'} ${issueTitle(o)}`
}

/** The job summary markdown. */
export function summaryMarkdown(o: Outcome): string {
  const issue = o.issue ? [`Issue: ${link(o.issue.url, `#${o.issue.number}`)}`] : []
  return (
    [summaryHeadline(o), ...issue, ...renderBanners(o), ...renderSections(o)].join('\n\n') + '\n'
  )
}

/** Writes the job summary; outside Actions (no GITHUB_STEP_SUMMARY) it only warns. */
export async function writeJobSummary(o: Outcome): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) {
    core.warning('GITHUB_STEP_SUMMARY is not set: job summary not written')
    return
  }
  try {
    await core.summary.addRaw(summaryMarkdown(o)).write()
  } catch (error) {
    core.warning(
      `Job summary not written: ${error instanceof Error ? error.message : String(error)}`
    )
  }
}

import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals'
import type { Outcome } from '../../src/outcome.js'
import { dryRun, failedWithMismatch, refused, rolledBack, success } from './report-fixtures.js'

const write = jest.fn<() => Promise<unknown>>()
const addRaw = jest.fn<(md: string) => { write: typeof write }>(() => ({ write }))
const warning = jest.fn<(message: string) => void>()

jest.unstable_mockModule('@actions/core', () => ({
  summary: { addRaw },
  warning,
  setOutput: jest.fn(),
  info: jest.fn()
}))

const { summaryMarkdown, writeJobSummary } = await import('../../src/report/summary.js')
const { renderChecklistSection, renderFacts, renderHostSteps } =
  await import('../../src/report/issue.js')

describe('summaryMarkdown', () => {
  it('opens with a one-line headline with an emoji per result', () => {
    const headline = (o: Outcome): string => summaryMarkdown(o).split('\n')[0]
    expect(headline(success())).toBe('## ✅ JWT secret rotation 2025-03-14: success')
    expect(headline(rolledBack())).toBe('## ↩️ JWT secret rotation 2025-03-14: rolled-back')
    expect(headline(failedWithMismatch())).toBe('## ❌ JWT secret rotation 2025-03-14: failed')
    expect(headline(dryRun())).toBe('## 🧪 JWT secret rotation 2025-03-14: dry-run')
    expect(headline(refused())).toBe(
      '## 🛑 JWT secret rotation 2025-03-14: failed (refused by preflight: nothing was changed)'
    )
    const recovered = { ...success(), result: 'recovered' as const, recover: true }
    expect(headline(recovered)).toBe('## 🩹 JWT secret rotation 2025-03-14: recovered')
  })

  it('reuses the issue sections and links the issue', () => {
    const o = success()
    const md = summaryMarkdown(o)
    expect(md).toContain('Issue: [#17](https://github.com/acme/cloudbox/issues/17)')
    expect(md).toContain(renderFacts(o))
    expect(md).toContain(renderHostSteps(o))
    expect(md).toContain(renderChecklistSection(o))
  })

  it('has no issue line without an issue, and keeps the banners', () => {
    const md = summaryMarkdown(failedWithMismatch())
    expect(md).not.toContain('Issue:')
    expect(md).toContain('> [!CAUTION]\n> **CI secrets and production may disagree.**')
    expect(summaryMarkdown(dryRun())).toContain('## Plan')
  })
})

describe('writeJobSummary', () => {
  const saved = process.env.GITHUB_STEP_SUMMARY
  beforeEach(() => {
    write.mockReset()
    addRaw.mockClear()
    warning.mockReset()
  })
  afterEach(() => {
    if (saved === undefined) delete process.env.GITHUB_STEP_SUMMARY
    else process.env.GITHUB_STEP_SUMMARY = saved
  })

  it('writes the summary markdown', async () => {
    process.env.GITHUB_STEP_SUMMARY = '/tmp/step-summary.md'
    write.mockResolvedValue(undefined)
    const o = success()
    await writeJobSummary(o)
    expect(addRaw).toHaveBeenCalledWith(summaryMarkdown(o))
    expect(write).toHaveBeenCalledTimes(1)
    expect(warning).not.toHaveBeenCalled()
  })

  it('warns instead of throwing without GITHUB_STEP_SUMMARY', async () => {
    delete process.env.GITHUB_STEP_SUMMARY
    await expect(writeJobSummary(success())).resolves.toBeUndefined()
    expect(addRaw).not.toHaveBeenCalled()
    expect(warning).toHaveBeenCalledWith(expect.stringContaining('GITHUB_STEP_SUMMARY'))
  })

  it('warns instead of throwing when the write fails', async () => {
    process.env.GITHUB_STEP_SUMMARY = '/nonexistent/summary.md'
    write.mockRejectedValue(new Error('EACCES: permission denied'))
    await expect(writeJobSummary(success())).resolves.toBeUndefined()
    expect(warning).toHaveBeenCalledWith(expect.stringContaining('EACCES'))
  })
})

// What the humans see: no secret anywhere, a report even when GitHub fails,
// and CI secrets put back when the CI phase fails part-way.
import { describe, expect, it } from '@jest/globals'
import { readFileSync, readdirSync } from 'node:fs'
import { envValue } from '../../src/host/dotenv.js'
import {
  KEYS,
  SCOPES,
  ciSecret,
  expectResult,
  lastIssue,
  leaks,
  readablePlaces,
  seedCiSecrets,
  useBed,
  type Bed
} from './helpers.js'

let bed: Bed
useBed((b) => (bed = b))

/** Every process's argv on this machine, sampled until stopped. */
function sampleArgv(): { stop: () => Set<string> } {
  const seen = new Set<string>()
  let running = true
  const tick = (): void => {
    if (!running) return
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue
      try {
        seen.add(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '))
      } catch {
        // the process ended
      }
    }
    setTimeout(tick, 5)
  }
  tick()
  return {
    stop: () => {
      running = false
      return seen
    }
  }
}

describe('secrets never leak', () => {
  it('no old or new value in stdout, outputs, summary, issue, journal, host log or any argv', async () => {
    const { sandbox } = bed
    await seedCiSecrets(bed)
    const envBefore = (await sandbox.readEnvFile()).toString('utf8')
    const sampler = sampleArgv()
    const run = await bed.rotate()
    const argv = sampler.stop()
    expectResult(run, 'success')
    const envAfter = (await sandbox.readEnvFile()).toString('utf8')
    const values = KEYS.flatMap((k) => [
      envValue(envBefore, k) as string,
      envValue(envAfter, k) as string
    ])
    expect(new Set(values).size).toBe(4)
    expect(argv.size).toBeGreaterThan(50)

    const places: Record<string, string> = {
      ...readablePlaces(bed, run),
      argv: [...argv].join('\n')
    }
    // The search covers real content: a complete journal, the host's log, the issue.
    expect(places.journal).toMatch(/\tresult\t-\tsuccess\t/)
    expect(places['host.log'].length).toBeGreaterThan(0)
    expect(places.issues).toContain('Post-rotation checklist')
    expect(leaks(values, places)).toEqual([])
    // The masking itself did happen, for each value.
    for (const value of values) expect(run.stdout).toContain(`::add-mask::${value}`)
  })
})

describe('reporting when GitHub fails', () => {
  it('the issue API fails: the result still reaches the log, summary and outputs', async () => {
    bed.github.inject({ method: 'POST', path: /\/issues$/, status: 500 })
    const issuesBefore = bed.github.issues.length
    const run = await bed.rotate({ 'admin-credentials': '', 'user-credentials': '' })
    expectResult(run, 'success')
    expect(bed.github.issues.length).toBe(issuesBefore)
    expect(run.stdout).toMatch(/could not open the report issue/)
    expect(run.summary).toContain('success')
    expect(run.summary).toContain('## Post-rotation checklist')
    expect(run.summary).toContain('- [ ] Verify admin can login')
    expect(run.outputs['issue-url']).toBe('')
  })

  it('a CI write fails for good: written secrets go back, the host is never touched', async () => {
    const old = await seedCiSecrets(bed)
    const envBefore = await bed.sandbox.readEnvFile()
    bed.github.inject({
      method: 'PUT',
      path: /environments\/staging\/secrets\/JWT_REFRESH_SECRET$/,
      status: 403
    })
    const run = await bed.rotate()
    expectResult(run, 'failed')
    expect((await bed.sandbox.readEnvFile()).equals(envBefore)).toBe(true)
    for (const scope of SCOPES)
      for (const key of KEYS) expect(ciSecret(bed, scope, key)).toBe(old[key])
    expect(run.stdout).toMatch(/environment:staging\/JWT_REFRESH_SECRET/)
    expect(run.stdout).toMatch(/lock released/)
    const issue = lastIssue(bed)
    expect(issue.title).toMatch(/: failed$/)
    expect(issue.body).toMatch(/old values/)
  })
})

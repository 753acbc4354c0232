// A check that breaks after a successful host sequence is a failed check, a
// warning and an unticked line: it never relabels the rotation.
import { describe, expect, it } from '@jest/globals'
import { expectResult, lastIssue, seedCiSecrets, useBed, type Bed } from './helpers.js'

let bed: Bed
useBed((b) => (bed = b))

describe('verification never relabels the rotation', () => {
  it('the log scan cannot read the logs: result success, verification failed, the issue says why', async () => {
    await seedCiSecrets(bed)
    await bed.sandbox.setComposeFaults([{ match: '^logs', action: 'fail' }])

    const run = await bed.rotate()
    expectResult(run, 'success')
    expect(run.code).toBe(0)
    expect(run.outputs.verification).toBe('failed')
    expect(run.stdout).toMatch(/::warning::verification failed: log scan: failed/)

    const issue = lastIssue(bed)
    expect(issue.title).toMatch(/: success$/)
    expect(issue.body).toMatch(/\| Verification +\| failed/)
    expect(issue.body).toMatch(/- \[ \] Check error logs for JWT-related errors.*log scan failed/)
    expect(issue.body).toMatch(/- \[x\] Verify admin can login/)
    // The rotation date is still documented: the rotation did happen.
    expect(bed.github.variables.get('JWT_SECRETS_ROTATED_AT')).toBe(run.outputs['rotated-at'])
  })
})

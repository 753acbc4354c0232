// CI truth end to end: the new values land exactly where the names already
// live, a stale copy elsewhere refuses the run before any change, a write
// whose answer was lost is compensated, and a host that refuses forwarded
// channels skips the checks that need one instead of failing them.
import { describe, expect, it } from '@jest/globals'
import { envValue } from '../../src/host/dotenv.js'
import { startFaultySshd } from '../../sandbox/ssh-faults.js'
import { KEYS, ciSecret, expectResult, lastIssue, useBed, type Bed } from './helpers.js'

let bed: Bed
useBed((b) => (bed = b))

async function hostValues(): Promise<Record<string, string | undefined>> {
  const env = (await bed.sandbox.readEnvFile()).toString('utf8')
  return Object.fromEntries(KEYS.map((k) => [k, envValue(env, k)]))
}

describe('CI truth', () => {
  it('writes only where the secrets live: a repository without them gets no copy', async () => {
    // Only production holds them (behind its reviewers and branch rules).
    bed.github.reset()
    const before = await hostValues()
    for (const key of KEYS)
      bed.github.secrets('environment:production').set(key, before[key] as string)
    const run = await bed.rotate({ environments: 'production,staging' })
    expectResult(run, 'success')
    const after = await hostValues()
    for (const key of KEYS) {
      expect(ciSecret(bed, 'environment:production', key)).toBe(after[key])
      expect(ciSecret(bed, 'repository', key)).toBeUndefined()
      expect(ciSecret(bed, 'environment:staging', key)).toBeUndefined()
    }
    expect(run.stdout).toMatch(
      /::notice::repository holds no JWT_SECRET, JWT_REFRESH_SECRET: skipped there/
    )
    const issue = lastIssue(bed)
    expect(issue.body).toMatch(/\*\*Skipped:\*\*\n- repository holds no JWT_SECRET/)
    expect(issue.body).toMatch(/- \[x\] Update secret in any CI\/CD pipelines/)
  })

  it('refuses before any change when an unlisted environment holds a rotated name', async () => {
    bed.github.addEnvironment('qa')
    bed.github.secrets('environment:qa').set('JWT_SECRET', 'another-apps-secret-value-123')
    const envBefore = await bed.sandbox.readEnvFile()
    const writes = bed.github.secretWrites.length
    const run = await bed.rotate()
    expectResult(run, 'failed')
    expect(run.stdout).toMatch(
      /environment qa holds JWT_SECRET but is not listed in environments.*ignore-environments/
    )
    expect(bed.github.secretWrites.length).toBe(writes)
    expect((await bed.sandbox.readEnvFile()).equals(envBefore)).toBe(true)
    expect(lastIssue(bed).body).toMatch(/environment qa holds JWT_SECRET/)

    const ignored = await bed.rotate({ 'ignore-environments': 'qa' })
    expectResult(ignored, 'success')
    expect(ciSecret(bed, 'environment:qa', 'JWT_SECRET')).toBe('another-apps-secret-value-123')
    expect(lastIssue(bed).body).toMatch(/ignore-environments.*\n- qa \(JWT_SECRET\)/)
  })

  it('compensates a write whose answer was lost although GitHub applied it', async () => {
    const old = await hostValues()
    // Every try of this PUT (1 + 3 retries) is applied, then answered 502.
    bed.github.inject({
      method: 'PUT',
      path: /\/environments\/staging\/secrets\/JWT_SECRET$/,
      status: 502,
      afterApplying: true,
      times: 4
    })
    const run = await bed.rotate()
    expectResult(run, 'failed')
    expect(run.stdout).toMatch(/staging\/JWT_SECRET: HTTP 502.*\(may have been applied\)/)
    // The lost write was undone with the rest: CI is back on production's values.
    for (const scope of ['repository', 'environment:production', 'environment:staging']) {
      for (const key of KEYS) expect(ciSecret(bed, scope, key)).toBe(old[key])
    }
    expect(await hostValues()).toEqual(old)
    const issue = lastIssue(bed)
    expect(issue.body).toMatch(/Restored to the previous values/)
    expect(issue.body).not.toMatch(/State UNKNOWN/)
  })

  it('skips the checks that need a forwarded channel when sshd refuses them', async () => {
    const sshd = await startFaultySshd(bed.sandbox, null, {}, 'AllowTcpForwarding no')
    try {
      const run = await bed.rotate({
        'ssh-port': String(sshd.port),
        'ssh-known-hosts': sshd.knownHosts
      })
      expectResult(run, 'success')
      expect(run.stdout).toMatch(/::warning::sshd refuses forwarded channels for this user/)
      expect(run.outputs.verification).toBe('skipped')
      const issue = lastIssue(bed)
      expect(issue.body).toMatch(
        /- \[ \] Verify admin can login — .*sshd refuses forwarded channels/
      )
      expect(issue.body).toMatch(/- \[x\] Update secret in any CI\/CD pipelines/)
    } finally {
      await sshd.stop()
    }
  })
})

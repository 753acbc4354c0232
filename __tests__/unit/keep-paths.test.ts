import { describe, expect, it } from '@jest/globals'
import { redactKeepingPaths } from '../../src/host/keep-paths.js'

const SECRET = 'Zm9vYmFyYmF6cXV4cXV1eDEyMzQ1Njc4OTA='

describe('redactKeepingPaths', () => {
  it('keeps a known path that alone would look random (32+ base64 characters with a digit)', () => {
    const detail = 'path=/tmp/cbx-pqyDrA/cloudbox/shared/.env.backup.20261205T034851Z'
    expect(redactKeepingPaths(detail, [], ['/tmp/cbx-pqyDrA/cloudbox/shared'])).toBe(detail)
    // Without the path set aside, the run is blanked: the reason for this module.
    expect(redactKeepingPaths(detail, [], [])).not.toContain('cbx-pqyDrA')
  })

  it('still redacts secrets and random runs around the kept path', () => {
    const text = `/srv/App2/shared/.env: ${SECRET} and ${'aB3'.repeat(12)}`
    const out = redactKeepingPaths(text, [SECRET], ['/srv/App2/shared'])
    expect(out).toBe('/srv/App2/shared/.env: *** and <redacted>')
  })

  it('never keeps a path that holds a secret', () => {
    const out = redactKeepingPaths(`/srv/${SECRET}/x`, [SECRET], [`/srv/${SECRET}`])
    expect(out).not.toContain(SECRET)
  })
})

import { describe, expect, it } from '@jest/globals'
import { issueBody, issueTitle } from '../../src/report/issue.js'
import {
  dryRun,
  failedWithMismatch,
  graceful,
  refused,
  rolledBack,
  success
} from './report-fixtures.js'

const DESIGN_CHECKLIST = `- [x] Verify admin can login
- [x] Verify regular user can login
- [x] Check error logs for JWT-related errors
- [x] Update secret in any CI/CD pipelines
- [x] Document rotation date`

/** The table row whose first cell is `label`. */
function row(body: string, label: string): string | undefined {
  return body.split('\n').find((l) => l.startsWith(`| ${label} |`))
}

describe('issueTitle', () => {
  it('uses the date part of rotatedAt and the result', () => {
    expect(issueTitle(success())).toBe('JWT secret rotation 2025-03-14: success')
    expect(issueTitle(rolledBack())).toBe('JWT secret rotation 2025-03-14: rolled-back')
    expect(issueTitle(refused())).toBe('JWT secret rotation 2025-03-14: failed')
  })

  it('takes the UTC date of a timestamp with an offset', () => {
    const o = success()
    o.rotatedAt = '2025-03-14T23:30:00-02:00'
    expect(issueTitle(o)).toBe('JWT secret rotation 2025-03-15: success')
    expect(row(issueBody(o), 'Rotation date')).toContain('2025-03-15T01:30:00.000Z')
  })
})

describe('issueBody', () => {
  it('renders a successful run: facts, steps, secrets, verification, exact checklist', () => {
    const body = issueBody(success())
    expect(body).toContain(`## Post-rotation checklist\n\n${DESIGN_CHECKLIST}\n`)
    expect(body.trimEnd().endsWith(DESIGN_CHECKLIST)).toBe(true)
    expect(body).not.toContain('[!CAUTION]')
    expect(body).not.toContain('[!WARNING]')
    expect(row(body, 'Rotation date')).toBe('| Rotation date | `2025-03-14T09:26:53Z` |')
    expect(row(body, 'Reason')).toBe('| Reason | routine |')
    expect(row(body, 'Mode')).toBe('| Mode | immediate |')
    expect(row(body, 'Triggered by')).toBe('| Triggered by | octocat |')
    expect(row(body, 'Run')).toBe(
      '| Run | [https://github.com/acme/cloudbox/actions/runs/13847261](https://github.com/acme/cloudbox/actions/runs/13847261) |'
    )
    expect(row(body, 'Result')).toBe('| Result | **success** |')
    expect(row(body, 'Downtime')).toBe('| Downtime | 23.5 s |')
    expect(row(body, 'Backup')).toBe('| Backup | `/srv/cloudbox/.env.backup.20250314T092653Z` |')
    expect(row(body, 'Revoked refresh tokens')).toBe('| Revoked refresh tokens | 42 |')
    expect(body).toContain('## Host steps')
    expect(row(body, 'down')).toBe('| down | ✅ ok | 6.2 s |  |')
    expect(row(body, 'health')).toBe('| health | ✅ ok | 7.6 s | 200 after 4 attempts |')
    expect(body).toContain('## CI secrets written')
    expect(row(body, 'environment:production')).toBe('| environment:production | `JWT_SECRET` |')
    expect(body).toContain('- Admin login: ✅ verified')
    expect(body).toContain('- Regular user login: ✅ verified')
    expect(body).toContain('2 expected (clients holding old tokens), 0 configuration error(s)')
    expect(body).toContain(
      '```text\napi-1  | 2025-03-14T09:27:20Z JsonWebTokenError: invalid signature\n'
    )
    expect(body).not.toContain('retire-previous')
  })

  it('orders the sections', () => {
    const body = issueBody(success())
    const at = (s: string): number => body.indexOf(s)
    expect(at('| Rotation date |')).toBeLessThan(at('## Host steps'))
    expect(at('## Host steps')).toBeLessThan(at('## CI secrets written'))
    expect(at('## CI secrets written')).toBeLessThan(at('## Verification'))
    expect(at('## Verification')).toBeLessThan(at('## Post-rotation checklist'))
  })

  it('says what failed, what changed and the state now for a rolled-back run', () => {
    const body = issueBody(rolledBack())
    expect(body.startsWith('> [!WARNING]\n> **The rotation failed and was rolled back.**')).toBe(
      true
    )
    expect(body).toContain(
      '> **What failed:** health check failed: the API did not answer 200 within 120 s'
    )
    expect(body).toContain('> **What was changed:**\n> - host .env was swapped, then restored')
    expect(body).toContain(
      '> **State now:** production runs with the previous secrets; CI secrets hold the previous values'
    )
    expect(body).toContain('| health | ❌ fail | 120.0 s | HTTP 502 after 24 attempts |')
    expect(body).toContain('No CI secret holds the new values.')
    expect(body).toContain(
      '**Restored to the previous values:**\n- repository `JWT_SECRET`\n- repository `JWT_REFRESH_SECRET`\n- environment:production `JWT_SECRET`'
    )
    expect(body).toContain(
      '- [ ] Update secret in any CI/CD pipelines — rotation rolled back; CI secrets restored to the previous values'
    )
    expect(body).toContain('- [ ] Verify admin can login — not run: rotation rolled back')
    expect(body).not.toContain('- [x]')
    expect(body).toContain('- Health: ❌ failed: HTTP 502 after 24 attempts')
  })

  it('opens a refused run with a nothing-was-changed banner', () => {
    const body = issueBody(refused())
    expect(body.startsWith('> [!WARNING]\n> **Refused by preflight: nothing was changed.**')).toBe(
      true
    )
    expect(body).toContain(
      '> - another rotation holds the lock: stale, 3 h old, held by run 13840000 (pid 4121, gone)'
    )
    expect(body).toContain('> - environment "staging" does not exist')
    expect(body).toContain('No host step ran (nothing was changed on the host).')
    expect(body).toContain('None: no CI secret was written.')
    expect(row(body, 'Downtime')).toBe('| Downtime | n/a |')
    expect(row(body, 'Backup')).toBe('| Backup | n/a |')
    expect(body).not.toContain('- [x]')
  })

  it('puts a CAUTION banner first when CI and production may disagree', () => {
    const body = issueBody(failedWithMismatch())
    const lines = body.split('\n')
    expect(lines[0]).toBe('> [!CAUTION]')
    expect(lines[1]).toBe('> **CI secrets and production may disagree.**')
    expect(body).toContain(
      '> environment:production JWT_SECRET holds the new value and could not be restored.\n> Check the host, then re-run with recover: true or set the secret by hand.'
    )
    expect(body).toContain('> **The rotation failed.**')
    expect(body).toContain('| swap | ⏳ running | — |  |')
    expect(body).toContain('could NOT be restored and still hold the new values')
    expect(body).toContain(
      '> - environment:production `JWT_SECRET`: HTTP 403: Resource not accessible by personal access token'
    )
    expect(body).toMatch(/- \[ \] Update secret in any CI\/CD pipelines — 1 CI secret could not/)
  })

  it('renders a dry run with its plan and no changes', () => {
    const body = issueBody(dryRun())
    expect(body.startsWith('> [!NOTE]\n> **Dry run: nothing was changed.**')).toBe(true)
    expect(row(body, 'Mode')).toBe('| Mode | immediate (dry run) |')
    expect(row(body, 'Result')).toBe('| Result | **dry-run** |')
    expect(body).toContain('## Plan\n\n- write repository secrets JWT_SECRET, JWT_REFRESH_SECRET')
    expect(body).toContain('- [ ] Verify admin can login — not run: dry run')
  })

  it('tells a graceful run when to retire the previous secrets', () => {
    const body = issueBody(graceful())
    expect(body).toContain(
      'Run mode: retire-previous after 2025-03-21T09:26:53Z (the longest token lifetime: CloudBox refresh tokens live 7 days).'
    )
    expect(row(body, 'Mode')).toBe('| Mode | graceful |')
    expect(row(body, 'Revoked refresh tokens')).toBe(
      '| Revoked refresh tokens | none (graceful mode keeps sessions) |'
    )
    expect(row(body, 'Downtime')).toBe('| Downtime | 4.4 s |')
    expect(body).toContain(DESIGN_CHECKLIST)
  })

  it('shows the recover flag in the mode', () => {
    const o = success()
    o.result = 'recovered'
    o.recover = true
    const body = issueBody(o)
    expect(row(body, 'Mode')).toBe('| Mode | immediate (recover) |')
    expect(body.startsWith('> [!IMPORTANT]')).toBe(true)
  })

  it('escapes pipes and neutralises backticks and HTML in free text', () => {
    const o = success()
    o.reason = 'incident | leaked `JWT_SECRET` in <img src=x onerror=alert(1)> [link](http://evil)'
    o.triggeredBy = 'mallory|x'
    o.hostSteps[0].detail = 'a|b'
    const body = issueBody(o)
    expect(row(body, 'Reason')).toBe(
      '| Reason | incident \\| leaked &#96;JWT_SECRET&#96; in &lt;img src=x onerror=alert(1)&gt; \\[link\\](http://evil) |'
    )
    expect(row(body, 'Triggered by')).toBe('| Triggered by | mallory\\|x |')
    expect(row(body, 'backup')).toBe('| backup | ✅ ok | 0.0 s | a\\|b |')
    expect(body).not.toContain('<img')
    // Every table row keeps its cell count.
    for (const line of body.split('\n').filter((l) => l.startsWith('| Reason |'))) {
      expect(line.split(/(?<!\\)\|/).length).toBe(4)
    }
  })

  it('shows at most five log samples, in a fence that backticks cannot close', () => {
    const o = success()
    o.logScan = {
      status: 'config-errors',
      total: 7,
      expected: 0,
      configErrors: 7,
      samples: ['```', 'two', 'three', 'four', 'five', 'six', 'seven']
    }
    const body = issueBody(o)
    expect(body).toContain('````text\n```\ntwo\nthree\nfour\nfive\n````')
    expect(body).not.toContain('six')
    expect(body).toContain('2 more not shown')
    expect(body).toContain(
      '- [ ] Check error logs for JWT-related errors — 7 configuration errors in the logs'
    )
  })

  it('shows a non-http run URL as text, not a link', () => {
    const o = success()
    o.runUrl = 'javascript:alert(1)'
    expect(row(issueBody(o), 'Run')).toBe('| Run | javascript:alert(1) |')
    delete o.runUrl
    expect(row(issueBody(o), 'Run')).toBe('| Run | n/a |')
  })

  it('holds nothing but what the Outcome holds', () => {
    const body = issueBody(success())
    expect(body).not.toContain('undefined')
    expect(body).not.toContain('NaN')
    expect(body).not.toContain('[object Object]')
  })
})

import { describe, expect, it } from '@jest/globals'
import { CHECKLIST_TEXTS, checklist, renderChecklist } from '../../src/report/checklist.js'
import {
  dryRun,
  failedWithMismatch,
  graceful,
  refused,
  rolledBack,
  success
} from './report-fixtures.js'

const DESIGN_CHECKLIST = [
  '- [x] Verify admin can login',
  '- [x] Verify regular user can login',
  '- [x] Check error logs for JWT-related errors',
  '- [x] Update secret in any CI/CD pipelines',
  '- [x] Document rotation date'
].join('\n')

describe('checklist', () => {
  it('has exactly the runbook lines, in order, for every kind of run', () => {
    for (const o of [success(), rolledBack(), refused(), failedWithMismatch(), dryRun()]) {
      expect(checklist(o).map((i) => i.text)).toEqual([...CHECKLIST_TEXTS])
    }
    expect(CHECKLIST_TEXTS).toEqual([
      'Verify admin can login',
      'Verify regular user can login',
      'Check error logs for JWT-related errors',
      'Update secret in any CI/CD pipelines',
      'Document rotation date'
    ])
  })

  it('checks every line of a fully verified run, rendered exactly as in DESIGN §5', () => {
    const items = checklist(success())
    expect(items.every((i) => i.done && i.reason === undefined)).toBe(true)
    expect(renderChecklist(items)).toBe(DESIGN_CHECKLIST)
  })

  it('checks the log line when the scan is clean, too', () => {
    const o = success()
    o.logScan = { status: 'clean', total: 0, expected: 0, configErrors: 0, samples: [] }
    expect(checklist(o)[2]).toEqual({ text: CHECKLIST_TEXTS[2], done: true })
  })

  it('gives a reason for each unchecked line of a rolled-back run', () => {
    const items = checklist(rolledBack())
    expect(items.map((i) => i.done)).toEqual([false, false, false, false, false])
    expect(items.map((i) => i.reason)).toEqual([
      'not run: rotation rolled back',
      'not run: rotation rolled back',
      'not run: rotation rolled back',
      'rotation rolled back; CI secrets restored to the previous values',
      'not run: rotation rolled back'
    ])
    expect(renderChecklist(items).split('\n')[3]).toBe(
      '- [ ] Update secret in any CI/CD pipelines — rotation rolled back; CI secrets restored to the previous values'
    )
  })

  it('explains skipped and failed logins', () => {
    const o = success()
    o.logins = [
      { account: 'admin', status: 'skipped', reason: 'no admin-credentials given' },
      { account: 'user', status: 'failed', reason: 'login answered 401' }
    ]
    const [admin, user] = checklist(o)
    expect(admin).toEqual({
      text: 'Verify admin can login',
      done: false,
      reason: 'skipped: no admin-credentials given'
    })
    expect(user.reason).toBe('failed: login answered 401')
  })

  it('treats a missing login entry on a successful run as skipped for lack of credentials', () => {
    const o = success()
    o.logins = [{ account: 'user', status: 'verified' }]
    const [admin, user] = checklist(o)
    expect(admin.reason).toBe('skipped: no admin-credentials given')
    expect(user.done).toBe(true)
  })

  it('counts configuration errors in the logs', () => {
    const o = success()
    o.logScan = {
      status: 'config-errors',
      total: 5,
      expected: 2,
      configErrors: 3,
      samples: ['api-1 | Error: secretOrPrivateKey must have a value']
    }
    expect(checklist(o)[2]).toEqual({
      text: 'Check error logs for JWT-related errors',
      done: false,
      reason: '3 configuration errors in the logs'
    })
    o.logScan = { status: 'skipped', total: 0, expected: 0, configErrors: 0, samples: [] }
    expect(checklist(o)[2].reason).toBe('skipped')
  })

  it('leaves the CI/CD line unchecked when no secret was written or one is unrestored', () => {
    const o = success()
    o.updatedSecrets = []
    expect(checklist(o)[3]).toMatchObject({ done: false, reason: 'no CI secret was written' })
    const m = checklist(failedWithMismatch())[3]
    expect(m.done).toBe(false)
    expect(m.reason).toContain('1 CI secret could not be restored')
    expect(m.reason).toContain('environment:production JWT_SECRET')
  })

  it('checks the CI/CD line of a recovered run with written secrets', () => {
    const o = success()
    o.result = 'recovered'
    o.recover = true
    expect(checklist(o)[3].done).toBe(true)
  })

  it('says what a recovery aligned, never "no CI secret was written"', () => {
    const o = success()
    o.result = 'recovered'
    o.recover = true
    o.updatedSecrets = []
    o.restoredSecrets = [{ scope: 'repository', name: 'JWT_SECRET' }]
    const line = checklist(o)[3]
    expect(line.done).toBe(false)
    expect(line.reason).toMatch(/recovery: 1 CI secret set to the restored .env's values/)
    expect(line.reason).not.toMatch(/no CI secret was written/)
  })

  it('documents the rotation date only when the variable was set', () => {
    const o = success()
    o.rotationDateVariable = {
      name: 'JWT_SECRETS_ROTATED_AT',
      status: 'failed',
      reason: 'HTTP 403'
    }
    expect(checklist(o)[4]).toMatchObject({ done: false, reason: 'variable not set: HTTP 403' })
    o.rotationDateVariable = {
      name: '',
      status: 'skipped',
      reason: 'rotation-date-variable is empty'
    }
    expect(checklist(o)[4].reason).toBe('variable not set: rotation-date-variable is empty')
    expect(checklist(graceful())[4].done).toBe(true)
  })

  it('says a refused run and a dry run did nothing', () => {
    expect(checklist(refused()).map((i) => i.reason)).toEqual([
      'not run: refused by preflight',
      'not run: refused by preflight',
      'not run: refused by preflight',
      'not run: refused by preflight; no CI secret was written',
      'not run: refused by preflight'
    ])
    expect(
      checklist(dryRun()).every((i) => !i.done && i.reason?.startsWith('not run: dry run'))
    ).toBe(true)
  })

  it('keeps the text verbatim and neutralises markup in reasons', () => {
    const out = renderChecklist([
      { text: 'Verify admin can login', done: false, reason: 'failed: `x` <b>|</b>\nnext' }
    ])
    expect(out).toBe(
      '- [ ] Verify admin can login — failed: &#96;x&#96; &lt;b&gt;\\|&lt;/b&gt; next'
    )
  })
})

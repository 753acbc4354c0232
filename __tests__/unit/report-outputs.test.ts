import { beforeEach, describe, expect, it, jest } from '@jest/globals'
import { dryRun, refused, rolledBack, success } from './report-fixtures.js'

const setOutput = jest.fn<(name: string, value: unknown) => void>()

jest.unstable_mockModule('@actions/core', () => ({
  setOutput,
  warning: jest.fn(),
  info: jest.fn(),
  summary: { addRaw: jest.fn() }
}))

const { setOutputs } = await import('../../src/report/outputs.js')

function outputs(): Record<string, unknown> {
  return Object.fromEntries(setOutput.mock.calls.map(([name, value]) => [name, value]))
}

describe('setOutputs', () => {
  beforeEach(() => {
    setOutput.mockReset()
  })

  it('sets every output of a successful run', () => {
    setOutputs(success())
    expect(outputs()).toEqual({
      result: 'success',
      verification: 'skipped',
      'rotated-at': '2025-03-14T09:26:53Z',
      'downtime-seconds': '23.5',
      'issue-url': 'https://github.com/acme/cloudbox/issues/17',
      'issue-number': '17',
      'updated-secrets': JSON.stringify([
        { scope: 'repository', name: 'JWT_SECRET' },
        { scope: 'repository', name: 'JWT_REFRESH_SECRET' },
        { scope: 'environment:production', name: 'JWT_SECRET' },
        { scope: 'environment:production', name: 'JWT_REFRESH_SECRET' }
      ]),
      'backup-path': '/srv/cloudbox/.env.backup.20250314T092653Z'
    })
    expect(setOutput).toHaveBeenCalledTimes(8)
  })

  it('gives updated-secrets as parseable JSON with only scope and name', () => {
    const o = success()
    o.updatedSecrets = [{ scope: 'repository', name: 'JWT_SECRET', extra: 'x' } as never]
    setOutputs(o)
    expect(JSON.parse(outputs()['updated-secrets'] as string)).toEqual([
      { scope: 'repository', name: 'JWT_SECRET' }
    ])
  })

  it('leaves unknown values empty', () => {
    setOutputs(refused())
    expect(outputs()).toEqual({
      result: 'failed',
      verification: 'skipped',
      'rotated-at': '2025-03-14T09:26:53Z',
      'downtime-seconds': '',
      'issue-url': '',
      'issue-number': '',
      'updated-secrets': '[]',
      'backup-path': ''
    })
  })

  it('reports rolled-back and dry-run results', () => {
    setOutputs(rolledBack())
    expect(outputs()).toMatchObject({
      result: 'rolled-back',
      'downtime-seconds': '149.7',
      'updated-secrets': '[]'
    })
    setOutput.mockReset()
    setOutputs(dryRun())
    expect(outputs()).toMatchObject({ result: 'dry-run', 'downtime-seconds': '' })
  })

  it('formats downtime with one decimal', () => {
    const o = success()
    o.downtimeSeconds = 7
    setOutputs(o)
    expect(outputs()['downtime-seconds']).toBe('7.0')
  })
})

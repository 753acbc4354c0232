// Realistic Outcome fixtures for the report tests (not a test suite itself).
import type { Outcome, SecretRef } from '../../src/outcome.js'

export const ALL_SECRETS: SecretRef[] = [
  { scope: 'repository', name: 'JWT_SECRET' },
  { scope: 'repository', name: 'JWT_REFRESH_SECRET' },
  { scope: 'environment:production', name: 'JWT_SECRET' },
  { scope: 'environment:production', name: 'JWT_REFRESH_SECRET' }
]

const base: Outcome = {
  result: 'success',
  rotatedAt: '2025-03-14T09:26:53Z',
  mode: 'immediate',
  recover: false,
  dryRun: false,
  reason: 'routine',
  repository: 'acme/cloudbox',
  triggeredBy: 'octocat',
  runUrl: 'https://github.com/acme/cloudbox/actions/runs/13847261',
  host: 'prod.cloudbox.example',
  changed: [],
  stateNow: '',
  hostSteps: [],
  updatedSecrets: [],
  restoredSecrets: [],
  unrestoredSecrets: [],
  logins: []
}

/** A run that has not done anything yet: the outcome the phases start from. */
export function fresh(overrides: Partial<Outcome> = {}): Outcome {
  return { ...base, result: 'failed', stateNow: 'nothing was changed', ...overrides }
}

export function success(): Outcome {
  return {
    ...base,
    changed: [
      '4 CI secrets now hold the new values',
      'host .env rotated (backup kept)',
      '42 refresh tokens revoked'
    ],
    stateNow: 'production runs with the new secrets',
    hostResult: 'done',
    hostSteps: [
      { name: 'backup', status: 'ok', seconds: 0.04 },
      { name: 'down', status: 'ok', seconds: 6.21 },
      { name: 'swap', status: 'ok', seconds: 0.01 },
      { name: 'up postgres', status: 'ok', seconds: 1.9 },
      { name: 'wait postgres', status: 'ok', seconds: 3.05, detail: 'ready after 3 tries' },
      { name: 'revoke', status: 'ok', seconds: 0.3, detail: 'DELETE 42' },
      { name: 'up', status: 'ok', seconds: 4.4 },
      { name: 'health', status: 'ok', seconds: 7.55, detail: '200 after 4 attempts' }
    ],
    downtimeSeconds: 23.46,
    backupPath: '/srv/cloudbox/.env.backup.20250314T092653Z',
    revokedRows: 42,
    updatedSecrets: ALL_SECRETS.map((s) => ({ ...s })),
    health: { status: 'verified' },
    logins: [
      { account: 'admin', status: 'verified' },
      { account: 'user', status: 'verified' }
    ],
    logScan: {
      status: 'expected-only',
      total: 2,
      expected: 2,
      configErrors: 0,
      samples: [
        'api-1  | 2025-03-14T09:27:20Z JsonWebTokenError: invalid signature',
        'api-1  | 2025-03-14T09:27:31Z JsonWebTokenError: invalid signature'
      ],
      since: '2025-03-14T09:26:53Z'
    },
    rotationDateVariable: { name: 'JWT_SECRETS_ROTATED_AT', status: 'set' },
    issue: { number: 17, url: 'https://github.com/acme/cloudbox/issues/17' }
  }
}

export function rolledBack(): Outcome {
  return {
    ...base,
    result: 'rolled-back',
    reason: 'incident',
    failure: 'health check failed: the API did not answer 200 within 120 s',
    changed: [
      'host .env was swapped, then restored from the backup',
      '42 refresh tokens revoked (users must log in again)',
      '4 CI secrets were written, then restored to the previous values'
    ],
    stateNow: 'production runs with the previous secrets; CI secrets hold the previous values',
    hostResult: 'rolled-back',
    hostSteps: [
      { name: 'backup', status: 'ok', seconds: 0.05 },
      { name: 'down', status: 'ok', seconds: 5.8 },
      { name: 'swap', status: 'ok', seconds: 0.01 },
      { name: 'up postgres', status: 'ok', seconds: 2.1 },
      { name: 'wait postgres', status: 'ok', seconds: 2.9 },
      { name: 'revoke', status: 'ok', seconds: 0.2, detail: 'DELETE 42' },
      { name: 'up', status: 'ok', seconds: 4.2 },
      { name: 'health', status: 'fail', seconds: 120.0, detail: 'HTTP 502 after 24 attempts' },
      { name: 'rollback', status: 'ok', seconds: 14.3, detail: 'backup restored, healthy' }
    ],
    downtimeSeconds: 149.7,
    backupPath: '/srv/cloudbox/.env.backup.20250314T092653Z',
    revokedRows: 42,
    restoredSecrets: ALL_SECRETS.map((s) => ({ ...s })),
    health: { status: 'failed', reason: 'HTTP 502 after 24 attempts' }
  }
}

export function refused(): Outcome {
  return {
    ...base,
    result: 'failed',
    refused: [
      'another rotation holds the lock: stale, 3 h old, held by run 13840000 (pid 4121, gone)',
      'environment "staging" does not exist'
    ],
    failure: 'refused by preflight',
    stateNow: 'unchanged: no CI secret, variable or host file was written'
  }
}

export function failedWithMismatch(): Outcome {
  return {
    ...base,
    result: 'failed',
    failure: 'SSH connection lost while following the host journal; the host outcome is unknown',
    changed: ['4 CI secrets were written with the new values', 'host sequence started'],
    stateNow: 'unknown: the host may have finished or rolled back on its own',
    mismatch:
      'environment:production JWT_SECRET holds the new value and could not be restored.\nCheck the host, then re-run with recover: true or set the secret by hand.',
    hostSteps: [
      { name: 'backup', status: 'ok', seconds: 0.05 },
      { name: 'down', status: 'ok', seconds: 5.9 },
      { name: 'swap', status: 'running' }
    ],
    backupPath: '/srv/cloudbox/.env.backup.20250314T092653Z',
    updatedSecrets: [{ scope: 'environment:production', name: 'JWT_SECRET' }],
    restoredSecrets: [
      { scope: 'repository', name: 'JWT_SECRET' },
      { scope: 'repository', name: 'JWT_REFRESH_SECRET' },
      { scope: 'environment:production', name: 'JWT_REFRESH_SECRET' }
    ],
    unrestoredSecrets: [
      {
        scope: 'environment:production',
        name: 'JWT_SECRET',
        error: 'HTTP 403: Resource not accessible by personal access token'
      }
    ],
    health: { status: 'skipped', reason: 'host outcome unknown' }
  }
}

export function dryRun(): Outcome {
  return {
    ...base,
    result: 'dry-run',
    dryRun: true,
    stateNow: 'unchanged',
    plan: [
      'write repository secrets JWT_SECRET, JWT_REFRESH_SECRET',
      'write environment:production secrets JWT_SECRET, JWT_REFRESH_SECRET',
      'host: backup .env, down, swap .env, up -d postgres, revoke, up -d, health check',
      'set variable JWT_SECRETS_ROTATED_AT'
    ]
  }
}

export function graceful(): Outcome {
  const o = success()
  return {
    ...o,
    mode: 'graceful',
    revokedRows: undefined,
    downtimeSeconds: 4.44,
    retireAfter: '2025-03-21T09:26:53Z'
  }
}

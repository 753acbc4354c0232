// Host text (a compose error quoting a .env value, the script's stderr, journal
// details) is redacted with every .env value before the action reports it.
import { describe, expect, it } from '@jest/globals'
import { readFileSync } from 'node:fs'
import { readConfig } from '../../src/config.js'
import { HostPreflightError, HostRotation } from '../../src/host/sequence.js'
import type { HostSession } from '../../src/host/ssh.js'

function inputs(): (name: string) => string {
  const defaults: Record<string, string> = {}
  const yml = readFileSync(new URL('../../action.yml', import.meta.url), 'utf8')
  let current = ''
  for (const line of yml.split('\n')) {
    const name = /^ {2}([a-z-]+):$/.exec(line)
    if (name) current = name[1]
    const def = /^ {4}default: (.*)$/.exec(line)
    if (def && current) defaults[current] = def[1].replace(/^'(.*)'$/, '$1').replace(/''/g, "'")
  }
  const values: Record<string, string> = {
    ...defaults,
    'github-token': 'ghs_issue',
    repository: 'acme/cloudbox',
    'secrets-token': 'github_pat_x',
    'ssh-host': 'prod.example.com',
    'ssh-user': 'deploy',
    'ssh-private-key': '-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----',
    'ssh-fingerprint': 'SHA256:' + 'A'.repeat(43),
    'deploy-path': '/opt/cloudbox'
  }
  return (name) => values[name] ?? ''
}

const SMTP = 'hunter2-smtp-pass'
const ENV = `JWT_SECRET=old-jwt-secret-value\nJWT_REFRESH_SECRET=old-refresh-value\nENCRYPTION_KEY=enc-key-value-123\nSMTP_PASSWORD=${SMTP}\nNODE_ENV=prod\n`

/** A host whose compose config error and stderr quote the SMTP password. */
function stubSession(): HostSession {
  return {
    isConnected: true,
    readFile: async () => Buffer.from(ENV),
    exec: async (command: string) => {
      if (command.endsWith('preflight')) {
        return {
          code: 0,
          signal: undefined,
          stderr: '',
          stdout: [
            'deploy=ok',
            'compose_file=ok',
            'env_file=ok',
            'env_stat=600 0:0',
            'compose_cmd=docker compose',
            `compose_config_error=Invalid template: "${SMTP}"`,
            'http_client=curl',
            'detach=setsid',
            'timeout=yes',
            'journal=none',
            'lock=not-taken'
          ].join('\n')
        }
      }
      return { code: 1, signal: undefined, stdout: '', stderr: `release: cannot read ${SMTP}` }
    }
  } as unknown as HostSession
}

describe('host text redaction', () => {
  it('a compose error quoting a .env value reaches the problems as ***', async () => {
    const host = new HostRotation(
      stubSession(),
      readConfig(inputs()),
      { id: 'r1', by: 'test' },
      'immediate'
    )
    const error = await host
      .preflight(['JWT_SECRET', 'JWT_REFRESH_SECRET'], () => {})
      .catch((e: unknown) => e)
    expect(error).toBeInstanceOf(HostPreflightError)
    const text = (error as HostPreflightError).problems.join('\n')
    expect(text).toContain('Invalid template: "***"')
    expect(text).not.toContain(SMTP)
    expect(host.redactHost(`stderr: ${SMTP} and enc-key-value-123`)).toBe('stderr: *** and ***')
    // Short values (flags, ports, "prod") stay readable.
    expect(host.redactHost('NODE_ENV prod')).toBe('NODE_ENV prod')
  })
})

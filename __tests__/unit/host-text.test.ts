// Host text (a compose error quoting a .env value, the script's stderr, journal
// details) is redacted with every .env value before the action reports it.
import { describe, expect, it } from '@jest/globals'
import fc from 'fast-check'
import { readConfig } from '../../src/config.js'
import { inputs } from './action-inputs.js'
import { setEnvValues } from '../../src/host/dotenv.js'
import { parsePreflight } from '../../src/host/plan.js'
import {
  HostPreflightError,
  HostRotation,
  firstNonUtf8Line,
  textOf,
  worthRedacting
} from '../../src/host/sequence.js'
import type { HostSession } from '../../src/host/ssh.js'

const SMTP = 'hunter2-smtp-pass'
const ENV = `JWT_SECRET=old-jwt-secret-value\nJWT_REFRESH_SECRET=old-refresh-value\nENCRYPTION_KEY=enc-key-value-123\nSMTP_PASSWORD=${SMTP}\nNODE_ENV=prod\nPOSTGRES_USER=cloudbox\n`

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
    // Short values (flags, ports, "prod") and plain names stay readable.
    expect(host.redactHost('NODE_ENV prod')).toBe('NODE_ENV prod')
    expect(host.redactHost('/srv/cloudbox/.env.backup')).toBe('/srv/cloudbox/.env.backup')
    expect(worthRedacting('POSTGRES_USER', 'cloudbox')).toBe(false)
    expect(worthRedacting('SMTP_PASSWORD', 'correcthorse')).toBe(true)
    expect(worthRedacting('DATABASE_URL', 'postgres://u:p4ss@db/x')).toBe(true)
  })
})

describe('.env bytes', () => {
  // A Latin-1 comment and password, an invalid UTF-8 sequence, a BOM and CRLF.
  const original = Buffer.concat([
    Buffer.from([0xef, 0xbb, 0xbf]),
    Buffer.from('# caf\xe9 config\r\nJWT_SECRET=old\r\nSMTP_PASSWORD=pass\xe9\xff\r\n', 'latin1'),
    Buffer.from('JWT_REFRESH_SECRET=older\r\nNAME=\u00e9t\u00e9\r\n', 'utf8')
  ])

  it('a rewrite keeps every byte outside the rotated values', () => {
    const text = original.toString('latin1')
    const rewritten = Buffer.from(
      setEnvValues(text, { JWT_SECRET: 'bmV3', JWT_REFRESH_SECRET: 'bmV3Mg==' }),
      'latin1'
    )
    const expected = Buffer.from(
      original
        .toString('latin1')
        .replace('JWT_SECRET=old', 'JWT_SECRET=bmV3')
        .replace('JWT_REFRESH_SECRET=older', 'JWT_REFRESH_SECRET=bmV3Mg=='),
      'latin1'
    )
    expect(rewritten.equals(expected)).toBe(true)
    // What UTF-8 decoding did: every Latin-1 byte became EF BF BD.
    expect(Buffer.from(original.toString('utf8'), 'utf8').equals(original)).toBe(false)
  })

  it('property: any bytes around the rotated line survive', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 200 }), (a, b) => {
        const clean = (x: Uint8Array) => Buffer.from(x.filter((c) => c !== 0x0a && c !== 0x0d))
        const before = Buffer.concat([Buffer.from('# '), clean(a), Buffer.from('\n')])
        const after = Buffer.concat([Buffer.from('\n# '), clean(b), Buffer.from('\n')])
        const file = Buffer.concat([before, Buffer.from('JWT_SECRET=old'), after])
        const out = Buffer.from(
          setEnvValues(file.toString('latin1'), { JWT_SECRET: 'c2VjcmV0' }),
          'latin1'
        )
        expect(out.equals(Buffer.concat([before, Buffer.from('JWT_SECRET=c2VjcmV0'), after]))).toBe(
          true
        )
      })
    )
  })

  it('names the first line that is not UTF-8, and reads values as the app does', () => {
    expect(firstNonUtf8Line(original)).toBe(1)
    expect(firstNonUtf8Line(Buffer.from('A=\u00e9\nB=1\n'))).toBeUndefined()
    expect(textOf(Buffer.from('p\u00e9', 'utf8').toString('latin1'))).toBe('p\u00e9')
  })
})

describe('a lost answer to launch', () => {
  /** A session whose launch call dies with the connection; status answers as given. */
  function hostWith(statusAnswer: string | Error): HostRotation {
    const dropped = {
      isConnected: false,
      writeFiles: async () => {},
      exec: async () => {
        throw new Error('connection lost')
      }
    } as unknown as HostSession
    const host = new HostRotation(dropped, readConfig(inputs()), { id: 'r1', by: 't' }, 'immediate')
    ;(host as unknown as { state: unknown }).state = {
      facts: parsePreflightFacts(),
      composeCommand: 'docker compose',
      detach: 'setsid',
      envText: ENV,
      envSha256: 'x',
      oldValues: {},
      postgresUser: 'u',
      postgresDb: 'd',
      envPath: '/opt/cloudbox/.env',
      targets: []
    }
    ;(host as unknown as { lockTaken: boolean }).lockTaken = true
    reconnectTo = async () => {
      if (statusAnswer instanceof Error) throw statusAnswer
      return {
        isConnected: true,
        exec: async () => ({ code: 0, signal: undefined, stderr: '', stdout: statusAnswer })
      } as unknown as HostSession
    }
    return host
  }
  let reconnectTo: () => Promise<HostSession> = async () => {
    throw new Error('unset')
  }
  const launch = (host: HostRotation) =>
    host.launch('JWT_SECRET=new\n', '.env.backup.x', () => reconnectTo())

  it('the host says started: the run follows it, nothing is compensated', async () => {
    const host = hostWith('status=started\n')
    await launch(host)
    expect(host.launched).toBe(true)
    expect(host.launchUnknown).toBe(false)
  })

  it('the host says not started (fenced): a plain failure, the lock released', async () => {
    const host = hostWith('status=not-started\n')
    await expect(launch(host)).rejects.toThrow(/did not start and can no longer start/)
    expect(host.launched).toBe(false)
    expect(host.launchUnknown).toBe(false)
    expect(host.holdsLock).toBe(false)
  })

  it('the host cannot be asked: unknown, never "untouched", the lock kept', async () => {
    const host = hostWith(new Error('connection refused'))
    await expect(launch(host)).rejects.toThrow(/UNKNOWN/)
    expect(host.launched).toBe(false)
    expect(host.launchUnknown).toBe(true)
    expect(host.holdsLock).toBe(false)
  })
})

function parsePreflightFacts() {
  return parsePreflight('deploy=ok\nenv_file=ok\nenv_stat=600 0:0\nlock=taken')
}

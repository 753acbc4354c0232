import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  fingerprintSha256,
  HostKeyError,
  hostKeyAlgorithmsFor,
  hostMatches,
  keyTypeOfBlob,
  parseKnownHosts,
  pinnedKeysFor,
  verifyHostKey,
  type HostKeyPin
} from '../../src/host/hostkey.js'

interface Key {
  type: string
  blob: Buffer
  pubLine: string // "type base64"
  keygenFingerprint: string
}

let dir: string
const keys: Record<string, Key> = {}

function keygen(name: string, args: string[]): Key {
  const file = join(dir, name)
  execFileSync('ssh-keygen', ['-q', ...args, '-N', '', '-C', `${name}@test`, '-f', file])
  const pub = readFileSync(`${file}.pub`, 'utf8').trim()
  const [type, b64] = pub.split(' ')
  const keygenFingerprint = execFileSync('ssh-keygen', ['-lf', `${file}.pub`])
    .toString()
    .split(' ')[1]
  return { type, blob: Buffer.from(b64, 'base64'), pubLine: `${type} ${b64}`, keygenFingerprint }
}

function hashKnownHosts(text: string): string {
  const file = join(dir, `kh-${Math.random().toString(36).slice(2)}`)
  writeFileSync(file, text)
  execFileSync('ssh-keygen', ['-q', '-H', '-f', file], { stdio: 'ignore' })
  return readFileSync(file, 'utf8')
}

/** What OpenSSH itself finds for a name (ssh-keygen -F). */
function keygenFinds(text: string, name: string): boolean {
  const file = join(dir, `kf-${Math.random().toString(36).slice(2)}`)
  writeFileSync(file, text)
  try {
    return execFileSync('ssh-keygen', ['-F', name, '-f', file]).toString().trim() !== ''
  } catch {
    return false
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hostkey-test-'))
  keys.ed = keygen('ed', ['-t', 'ed25519'])
  keys.ed2 = keygen('ed2', ['-t', 'ed25519'])
  keys.rsa = keygen('rsa', ['-t', 'rsa', '-b', '2048'])
  keys.ecdsa = keygen('ecdsa', ['-t', 'ecdsa', '-b', '384'])
})

afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})

describe('fingerprints and key types', () => {
  it('match ssh-keygen -lf exactly', () => {
    for (const k of Object.values(keys)) {
      expect(fingerprintSha256(k.blob)).toBe(k.keygenFingerprint)
      expect(k.keygenFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/)
    }
  })

  it('reads the key type from the blob', () => {
    expect(keyTypeOfBlob(keys.ed.blob)).toBe('ssh-ed25519')
    expect(keyTypeOfBlob(keys.rsa.blob)).toBe('ssh-rsa')
    expect(keyTypeOfBlob(keys.ecdsa.blob)).toBe('ecdsa-sha2-nistp384')
    expect(() => keyTypeOfBlob(Buffer.from([0, 0]))).toThrow(HostKeyError)
    expect(() => keyTypeOfBlob(Buffer.from([0, 0, 1, 0, 1]))).toThrow(HostKeyError)
  })
})

describe('parseKnownHosts', () => {
  it('parses plain, marked, commented and ssh-keyscan style lines', () => {
    const text = [
      '# example.com:22 SSH-2.0-OpenSSH_9.2p1',
      `example.com,10.0.0.1 ${keys.ed.pubLine}`,
      '',
      `@revoked * ${keys.ed2.pubLine} old key`,
      `@cert-authority *.example.com ${keys.rsa.pubLine}`,
      `[example.com]:2222 ${keys.ecdsa.pubLine}\r`
    ].join('\n')
    const entries = parseKnownHosts(text)
    expect(entries.map((e) => [e.marker, e.hosts, e.keyType, e.line])).toEqual([
      [undefined, 'example.com,10.0.0.1', 'ssh-ed25519', 2],
      ['@revoked', '*', 'ssh-ed25519', 4],
      ['@cert-authority', '*.example.com', 'ssh-rsa', 5],
      [undefined, '[example.com]:2222', 'ecdsa-sha2-nistp384', 6]
    ])
    expect(entries[0].keyBlob.equals(keys.ed.blob)).toBe(true)
  })

  it('names the line of a malformed entry', () => {
    expect(() => parseKnownHosts(`# ok\nexample.com ssh-ed25519\n`)).toThrow(/line 2/)
    expect(() => parseKnownHosts(`example.com ssh-ed25519 !!notbase64`)).toThrow(
      /line 1: the key is not valid base64/
    )
    expect(() =>
      parseKnownHosts(`\n\nexample.com ssh-rsa ${keys.ed.pubLine.split(' ')[1]}`)
    ).toThrow(/line 3: key type ssh-rsa does not match the key \(ssh-ed25519\)/)
    expect(() => parseKnownHosts(`@bogus h ${keys.ed.pubLine}`)).toThrow(/line 1: unknown marker/)
    expect(() => parseKnownHosts(`h ssh-ed25519 AAAA`)).toThrow(/line 1: the key is not an SSH/)
  })
})

describe('hostMatches', () => {
  const cases: [string, string, number, boolean][] = [
    ['example.com', 'example.com', 22, true],
    ['example.com', 'EXAMPLE.com', 22, true],
    ['Example.COM', 'example.com', 22, true],
    ['example.com', 'example.com', 2222, false],
    ['[example.com]:2222', 'example.com', 2222, true],
    ['[example.com]:2222', 'example.com', 22, false],
    ['[example.com]:2222', 'example.com', 2223, false],
    ['[example.com]:22', 'example.com', 22, true],
    ['other.com,example.com', 'example.com', 22, true],
    ['*.example.com', 'db.example.com', 22, true],
    ['*.example.com', 'example.com', 22, false],
    ['*.example.com,!bad.example.com', 'bad.example.com', 22, false],
    ['!bad.example.com,*.example.com', 'good.example.com', 22, true],
    ['10.0.0.?', '10.0.0.7', 22, true],
    ['10.0.0.?', '10.0.0.17', 22, false],
    ['[10.0.0.*]:2222', '10.0.0.5', 2222, true],
    ['*', 'anything', 8022, true],
    ['example.com', 'exampleXcom', 22, false]
  ]
  it.each(cases)('%s vs %s:%d → %s', (field, host, port, expected) => {
    expect(hostMatches(field, host, port)).toBe(expected)
  })

  it('agrees with ssh-keygen -F on plain and hashed entries', () => {
    const plain = [
      `example.com ${keys.ed.pubLine}`,
      `[example.com]:2222 ${keys.ecdsa.pubLine}`,
      `10.1.2.3 ${keys.rsa.pubLine}`
    ].join('\n')
    const hashed = hashKnownHosts(plain + '\n')
    const hashedEntries = parseKnownHosts(hashed)
    expect(hashedEntries).toHaveLength(3)
    expect(hashedEntries.every((e) => e.hosts.startsWith('|1|'))).toBe(true)
    const probes: [string, number][] = [
      ['example.com', 22],
      ['example.com', 2222],
      ['example.com', 2200],
      ['10.1.2.3', 22],
      ['10.1.2.3', 2222],
      ['other.com', 22]
    ]
    for (const [host, port] of probes) {
      const name = port === 22 ? host : `[${host}]:${port}`
      for (const text of [plain, hashed]) {
        const ours = parseKnownHosts(text).some((e) => hostMatches(e.hosts, host, port))
        expect([name, ours]).toEqual([name, keygenFinds(text, name)])
      }
    }
  })
})

describe('pinnedKeysFor and hostKeyAlgorithmsFor', () => {
  it('lists the pinned key types for the host and port', () => {
    const pin: HostKeyPin = {
      kind: 'known-hosts',
      lines: [
        `example.com ${keys.ed.pubLine}`,
        `example.com ${keys.rsa.pubLine}`,
        `[example.com]:2222 ${keys.ecdsa.pubLine}`
      ].join('\n')
    }
    const at22 = pinnedKeysFor(pin, 'example.com', 22)
    expect(at22.keyTypes).toEqual(['ssh-ed25519', 'ssh-rsa'])
    expect(at22.describe).toContain(keys.ed.keygenFingerprint)
    expect(hostKeyAlgorithmsFor(at22.keyTypes)).toEqual([
      'ssh-ed25519',
      'rsa-sha2-512',
      'rsa-sha2-256',
      'ssh-rsa'
    ])
    const at2222 = pinnedKeysFor(pin, 'example.com', 2222)
    expect(at2222.keyTypes).toEqual(['ecdsa-sha2-nistp384'])
    expect(hostKeyAlgorithmsFor(at2222.keyTypes)).toEqual(['ecdsa-sha2-nistp384'])
  })

  it('throws with the host:port and the ssh-keyscan hint when nothing matches', () => {
    const pin: HostKeyPin = { kind: 'known-hosts', lines: `example.com ${keys.ed.pubLine}` }
    expect(() => pinnedKeysFor(pin, 'example.com', 2222)).toThrow(
      'ssh-known-hosts has no host key for [example.com]:2222 (no entry matches it); get one with: ssh-keyscan -p 2222 example.com'
    )
    const caOnly: HostKeyPin = {
      kind: 'known-hosts',
      lines: `@cert-authority example.com ${keys.ed.pubLine}`
    }
    expect(() => pinnedKeysFor(caOnly, 'example.com', 22)).toThrow(/certificates are not supported/)
  })

  it('does not restrict for fingerprint and insecure pins', () => {
    expect(
      pinnedKeysFor({ kind: 'fingerprint', fingerprint: 'SHA256:x' }, 'h', 22).keyTypes
    ).toEqual([])
    expect(pinnedKeysFor({ kind: 'insecure-skip' }, 'h', 22).describe).toMatch(/NOT checked/)
    expect(hostKeyAlgorithmsFor([])).toEqual([])
  })
})

describe('verifyHostKey', () => {
  it('accepts the pinned key, plain and hashed, and reports the fingerprint', () => {
    const plain = `example.com ${keys.ed.pubLine}\n[example.com]:2222 ${keys.rsa.pubLine}\n`
    for (const lines of [plain, hashKnownHosts(plain)]) {
      const pin: HostKeyPin = { kind: 'known-hosts', lines }
      expect(verifyHostKey(pin, 'example.com', 22, keys.ed.blob)).toEqual({
        ok: true,
        fingerprint: keys.ed.keygenFingerprint
      })
      expect(verifyHostKey(pin, 'example.com', 2222, keys.rsa.blob).ok).toBe(true)
      // the right key on the wrong port is a mismatch
      const wrongPort = verifyHostKey(pin, 'example.com', 2222, keys.ed.blob)
      expect(wrongPort.ok).toBe(false)
    }
  })

  it('names the expected and presented fingerprints on a mismatch', () => {
    const pin: HostKeyPin = { kind: 'known-hosts', lines: `example.com ${keys.ed.pubLine}` }
    const result = verifyHostKey(pin, 'example.com', 22, keys.ed2.blob)
    expect(result.ok).toBe(false)
    if (result.ok) return
    expect(result.reason).toMatch(/^host key mismatch for example\.com: /)
    expect(result.reason).toContain(`expected ssh-ed25519 ${keys.ed.keygenFingerprint}`)
    expect(result.reason).toContain(`presented ssh-ed25519 ${keys.ed2.keygenFingerprint}`)
  })

  it('says when known_hosts has no entry for the host', () => {
    const pin: HostKeyPin = { kind: 'known-hosts', lines: `other.com ${keys.ed.pubLine}` }
    const result = verifyHostKey(pin, 'example.com', 2222, keys.ed.blob)
    expect(result).toEqual({
      ok: false,
      reason: expect.stringMatching(
        /^host key mismatch for \[example\.com\]:2222: .*ssh-keyscan -p 2222 example\.com/
      )
    })
  })

  it('refuses a @revoked key even when it is also pinned', () => {
    const pin: HostKeyPin = {
      kind: 'known-hosts',
      lines: `example.com ${keys.ed.pubLine}\n@revoked * ${keys.ed.pubLine}\n`
    }
    const result = verifyHostKey(pin, 'example.com', 22, keys.ed.blob)
    expect(result).toEqual({
      ok: false,
      reason: expect.stringContaining('is revoked (@revoked on ssh-known-hosts line 2)')
    })
  })

  it('wildcard entries pin too', () => {
    const pin: HostKeyPin = {
      kind: 'known-hosts',
      lines: `*.internal,!db.internal ${keys.ed.pubLine}`
    }
    expect(verifyHostKey(pin, 'app.internal', 22, keys.ed.blob).ok).toBe(true)
    expect(verifyHostKey(pin, 'db.internal', 22, keys.ed.blob).ok).toBe(false)
  })

  it('fingerprint pins, with or without the trailing =', () => {
    const fp = keys.rsa.keygenFingerprint
    expect(verifyHostKey({ kind: 'fingerprint', fingerprint: fp }, 'h', 22, keys.rsa.blob)).toEqual(
      {
        ok: true,
        fingerprint: fp
      }
    )
    expect(
      verifyHostKey({ kind: 'fingerprint', fingerprint: `${fp}=` }, 'h', 22, keys.rsa.blob).ok
    ).toBe(true)
    const bad = verifyHostKey({ kind: 'fingerprint', fingerprint: fp }, 'h', 2222, keys.ed.blob)
    expect(bad).toEqual({
      ok: false,
      reason: `host key mismatch for [h]:2222: expected ${fp}, the server presented ssh-ed25519 ${keys.ed.keygenFingerprint}`
    })
  })

  it('insecure-skip accepts anything', () => {
    expect(verifyHostKey({ kind: 'insecure-skip' }, 'h', 22, keys.ecdsa.blob)).toEqual({
      ok: true,
      fingerprint: keys.ecdsa.keygenFingerprint
    })
  })

  it('turns a malformed known_hosts into a refusal, not a throw', () => {
    const result = verifyHostKey({ kind: 'known-hosts', lines: 'garbage' }, 'h', 22, keys.ed.blob)
    expect(result).toEqual({ ok: false, reason: expect.stringContaining('line 1') })
  })
})

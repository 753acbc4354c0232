// SSH host-key pinning (pure). The SSH module calls verifyHostKey from ssh2's
// `hostVerifier(keyBuffer)`, and limits the negotiated host-key algorithms to
// the pinned key types with pinnedKeysFor + hostKeyAlgorithmsFor.
//
// known_hosts matching follows OpenSSH (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"):
// comma-separated patterns with `*` and `?` wildcards and `!` negation, host
// names compared case-insensitively, `[host]:port` for ports other than 22,
// hashed `|1|salt|hash` entries (HMAC-SHA1 keyed with the salt over the name).
// Two deliberate differences: for port 22 an explicit `[host]:22` entry also
// matches, and a key listed `@revoked` is refused for every host, not only
// for the hosts on its line. `@cert-authority` lines are parsed but never pin
// anything (host certificates are not supported).
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import type { HostKeyPin as ConfigHostKeyPin } from '../config.js'

export type HostKeyPin = ConfigHostKeyPin

export class HostKeyError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'HostKeyError'
  }
}

/** `SHA256:` + unpadded base64 of SHA-256 over the key blob, as `ssh-keygen -lf` prints it. */
export function fingerprintSha256(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`
}

/** The key type named by the blob's first string, e.g. `ssh-ed25519`. */
export function keyTypeOfBlob(keyBlob: Buffer): string {
  if (keyBlob.length < 4) throw new HostKeyError('host key blob is too short')
  const length = keyBlob.readUInt32BE(0)
  if (length === 0 || length > 64 || 4 + length > keyBlob.length) {
    throw new HostKeyError('host key blob does not start with a key type string')
  }
  const type = keyBlob.subarray(4, 4 + length).toString('latin1')
  if (!/^[A-Za-z0-9@._+-]+$/.test(type)) {
    throw new HostKeyError('host key blob does not start with a key type string')
  }
  return type
}

export interface KnownHostEntry {
  marker?: '@revoked' | '@cert-authority'
  hosts: string
  keyType: string
  keyBlob: Buffer
  /** 1-based line number in the given text. */
  line: number
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/

/**
 * Parses known_hosts text (what `ssh-keyscan` prints, plain or hashed).
 * Skips blank and `#` lines; throws HostKeyError naming the line otherwise.
 */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = []
  const lines = text.replace(/^\uFEFF/, '').split('\n')
  lines.forEach((raw, index) => {
    const line = index + 1
    const content = raw.replace(/\r$/, '').trim()
    if (content === '' || content.startsWith('#')) return
    const fields = content.split(/[ \t]+/)
    let marker: KnownHostEntry['marker']
    if (fields[0].startsWith('@')) {
      const m = fields.shift() as string
      if (m !== '@revoked' && m !== '@cert-authority') {
        throw new HostKeyError(
          `ssh-known-hosts line ${line}: unknown marker (expected @revoked or @cert-authority)`
        )
      }
      marker = m
    }
    if (fields.length < 3) {
      throw new HostKeyError(
        `ssh-known-hosts line ${line}: expected "HOSTS KEYTYPE BASE64KEY" (as ssh-keyscan prints it)`
      )
    }
    const [hosts, keyType, key] = fields
    if (!BASE64.test(key) || key.length % 4 !== 0) {
      throw new HostKeyError(`ssh-known-hosts line ${line}: the key is not valid base64`)
    }
    const keyBlob = Buffer.from(key, 'base64')
    let blobType: string
    try {
      blobType = keyTypeOfBlob(keyBlob)
    } catch {
      throw new HostKeyError(`ssh-known-hosts line ${line}: the key is not an SSH public key`)
    }
    if (blobType !== keyType) {
      throw new HostKeyError(
        `ssh-known-hosts line ${line}: key type ${keyType} does not match the key (${blobType})`
      )
    }
    if (hosts.startsWith('|') && !/^\|1\|[A-Za-z0-9+/]+={0,2}\|[A-Za-z0-9+/]+={0,2}$/.test(hosts)) {
      throw new HostKeyError(`ssh-known-hosts line ${line}: malformed hashed host name`)
    }
    entries.push({ ...(marker ? { marker } : {}), hosts, keyType, keyBlob, line })
  })
  return entries
}

/** The names OpenSSH looks up for host:port (`host` for 22, else `[host]:port`). */
function lookupNames(host: string, port: number): string[] {
  const h = host.toLowerCase()
  return port === 22 ? [h, `[${h}]:22`] : [`[${h}]:${port}`]
}

function globToRegExp(pattern: string): RegExp {
  const body = pattern
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('')
  return new RegExp(`^${body}$`, 's')
}

function hashedMatches(field: string, name: string): boolean {
  const [, , salt, hash] = field.split('|')
  const expected = Buffer.from(hash, 'base64')
  const actual = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest()
  return expected.length === actual.length && timingSafeEqual(expected, actual)
}

/** Does a known_hosts host field match host:port? */
export function hostMatches(hostsField: string, host: string, port: number): boolean {
  const names = lookupNames(host, port)
  if (hostsField.startsWith('|1|')) {
    // Hashed entries hold one name, hashed as typed (OpenSSH lowercases it first).
    return names.some((name) => hashedMatches(hostsField, name))
  }
  let matched = false
  for (const raw of hostsField.split(',')) {
    const negated = raw.startsWith('!')
    const pattern = (negated ? raw.slice(1) : raw).toLowerCase()
    if (pattern === '') continue
    const re = globToRegExp(pattern)
    if (names.some((name) => re.test(name))) {
      if (negated) return false
      matched = true
    }
  }
  return matched
}

function entriesFor(pin: HostKeyPin & { kind: 'known-hosts' }, host: string, port: number) {
  const entries = parseKnownHosts(pin.lines)
  const matching = entries.filter((e) => hostMatches(e.hosts, host, port))
  return {
    entries,
    pinned: matching.filter((e) => e.marker === undefined),
    certAuthorities: matching.filter((e) => e.marker === '@cert-authority'),
    revoked: entries.filter((e) => e.marker === '@revoked')
  }
}

function target(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`
}

function unique<T>(items: T[]): T[] {
  return [...new Set(items)]
}

/**
 * The key types the pin allows for host:port (empty: any) and a short
 * description for logs. Throws HostKeyError when known_hosts has no usable
 * entry for host:port.
 */
export function pinnedKeysFor(
  pin: HostKeyPin,
  host: string,
  port: number
): { keyTypes: string[]; describe: string } {
  switch (pin.kind) {
    case 'insecure-skip':
      return {
        keyTypes: [],
        describe: 'host key NOT checked (ssh-insecure-skip-host-key-check: true)'
      }
    case 'fingerprint':
      return { keyTypes: [], describe: `pinned fingerprint ${pin.fingerprint}` }
    case 'known-hosts': {
      const { pinned, certAuthorities } = entriesFor(pin, host, port)
      if (pinned.length === 0) {
        const why =
          certAuthorities.length > 0
            ? 'only @cert-authority entries match, and host certificates are not supported'
            : 'no entry matches it'
        throw new HostKeyError(
          `ssh-known-hosts has no host key for ${target(host, port)} (${why}); get one with: ssh-keyscan -p ${port} ${host}`
        )
      }
      const keyTypes = unique(pinned.map((e) => e.keyType))
      const prints = unique(pinned.map((e) => `${e.keyType} ${fingerprintSha256(e.keyBlob)}`))
      return {
        keyTypes,
        describe: `ssh-known-hosts: ${prints.join(', ')}`
      }
    }
  }
}

/** Host-key algorithms to offer for the pinned key types (empty: do not restrict). */
export function hostKeyAlgorithmsFor(keyTypes: string[]): string[] {
  return unique(
    keyTypes.flatMap((type) =>
      type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [type]
    )
  )
}

function normalizeFingerprint(fp: string): string {
  return fp.trim().replace(/=+$/, '')
}

/** Checks the key the server presented against the pin. */
export function verifyHostKey(
  pin: HostKeyPin,
  host: string,
  port: number,
  presented: Buffer
): { ok: true; fingerprint: string } | { ok: false; reason: string } {
  const fingerprint = fingerprintSha256(presented)
  let presentedType: string
  try {
    presentedType = keyTypeOfBlob(presented)
  } catch {
    presentedType = 'unknown type'
  }
  const who = target(host, port)
  switch (pin.kind) {
    case 'insecure-skip':
      return { ok: true, fingerprint }
    case 'fingerprint':
      if (normalizeFingerprint(pin.fingerprint) === fingerprint) return { ok: true, fingerprint }
      return {
        ok: false,
        reason: `host key mismatch for ${who}: expected ${normalizeFingerprint(pin.fingerprint)}, the server presented ${presentedType} ${fingerprint}`
      }
    case 'known-hosts': {
      let found: ReturnType<typeof entriesFor>
      try {
        found = entriesFor(pin, host, port)
      } catch (error) {
        return { ok: false, reason: (error as Error).message }
      }
      const revoked = found.revoked.find((e) => e.keyBlob.equals(presented))
      if (revoked !== undefined) {
        return {
          ok: false,
          reason: `host key for ${who} is revoked (@revoked on ssh-known-hosts line ${revoked.line}): refused ${presentedType} ${fingerprint}`
        }
      }
      if (found.pinned.some((e) => e.keyBlob.equals(presented))) return { ok: true, fingerprint }
      if (found.pinned.length === 0) {
        return {
          ok: false,
          reason: `host key mismatch for ${who}: ssh-known-hosts has no entry for it (get one with: ssh-keyscan -p ${port} ${host}); the server presented ${presentedType} ${fingerprint}`
        }
      }
      const expected = unique(
        found.pinned.map((e) => `${e.keyType} ${fingerprintSha256(e.keyBlob)}`)
      )
      return {
        ok: false,
        reason: `host key mismatch for ${who}: expected ${expected.join(' or ')}, the server presented ${presentedType} ${fingerprint}`
      }
    }
  }
}

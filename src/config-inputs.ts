// The input primitives: one input read, checked and turned into a value, or
// refused with a ConfigError naming the input (and never echoing a
// credential). config.ts assembles them into the typed Config.
import type { Credentials, HostKeyPin, RotatedKey } from './config.js'

/** Reads one input; returns '' when it is not set (as @actions/core's getInput does). */
export type InputReader = (name: string) => string

export class ConfigError extends Error {
  constructor(
    readonly input: string,
    message: string
  ) {
    super(`Input "${input}": ${message}`)
    this.name = 'ConfigError'
  }
}

export const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/
// GitHub: alphanumerics and underscores, not starting with a digit or GITHUB_.
export const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
export const PATH_SEGMENT_SAFE = /^[^\0\n\r]+$/
// compose-file and env-file reach compose's command line: keep them to plain path characters.
export const RELATIVE_FILE = /^[A-Za-z0-9._-][A-Za-z0-9._/-]*$/
// Compose service names: [a-zA-Z0-9][a-zA-Z0-9_.-]+
export const SERVICE_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/
export const POSTGRES_IDENT = /^[A-Za-z_][A-Za-z0-9_$-]*$/
export const NOT_ROTATABLE = new Set(['ENCRYPTION_KEY'])

export function required(read: InputReader, name: string): string {
  const value = read(name).trim()
  if (value === '') throw new ConfigError(name, 'is required but was empty')
  return value
}

export function bool(read: InputReader, name: string, fallback: boolean): boolean {
  const value = read(name).trim().toLowerCase()
  if (value === '') return fallback
  if (['true', 'yes', '1', 'on'].includes(value)) return true
  if (['false', 'no', '0', 'off'].includes(value)) return false
  throw new ConfigError(name, `expected "true" or "false", got "${value}"`)
}

export function integer(
  read: InputReader,
  name: string,
  fallback: number,
  min: number,
  max: number
): number {
  const raw = read(name).trim()
  if (raw === '') return fallback
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `expected a whole number, got "${raw}"`)
  const value = Number(raw)
  if (value < min || value > max) {
    throw new ConfigError(name, `expected a number from ${min} to ${max}, got ${value}`)
  }
  return value
}

/** Splits a comma- or newline-separated list, dropping blanks. */
export function splitList(raw: string): string[] {
  return raw
    .split(/[,\n]/)
    .map((item) => item.trim())
    .filter((item) => item !== '')
}

export function checkSecretName(input: string, name: string): void {
  if (!SECRET_NAME.test(name)) {
    throw new ConfigError(
      input,
      `"${name}" is not a valid secret name (letters, digits and underscores, not starting with a digit)`
    )
  }
  if (/^GITHUB_/i.test(name)) {
    throw new ConfigError(input, `"${name}": secret names must not start with GITHUB_`)
  }
}

export function parseKeys(raw: string): RotatedKey[] {
  const items = splitList(raw)
  if (items.length === 0) throw new ConfigError('keys', 'lists no key to rotate')
  const keys: RotatedKey[] = []
  const envKeys = new Set<string>()
  const secretNames = new Map<string, string>()
  for (const item of items) {
    const parts = item.split('=')
    if (parts.length > 2) {
      throw new ConfigError('keys', `"${item}" is not KEY or KEY=SECRET_NAME`)
    }
    const envKey = parts[0].trim()
    const secretName = (parts[1] ?? parts[0]).trim()
    if (!ENV_KEY.test(envKey)) {
      throw new ConfigError('keys', `"${envKey}" is not a valid .env key name`)
    }
    if (NOT_ROTATABLE.has(envKey)) {
      throw new ConfigError(
        'keys',
        `${envKey} cannot be rotated here: it encrypts stored data (2FA secrets, SMTP password) and rotating it needs data re-encryption`
      )
    }
    if (envKey.endsWith('_PREVIOUS')) {
      throw new ConfigError(
        'keys',
        `"${envKey}": *_PREVIOUS keys are managed by mode graceful and retire-previous`
      )
    }
    checkSecretName('keys', secretName)
    if (envKeys.has(envKey)) throw new ConfigError('keys', `${envKey} is listed twice`)
    const upper = secretName.toUpperCase() // GitHub secret names are case-insensitive
    const clash = secretNames.get(upper)
    if (clash !== undefined) {
      throw new ConfigError('keys', `${clash} and ${envKey} both map to the secret ${secretName}`)
    }
    envKeys.add(envKey)
    secretNames.set(upper, envKey)
    keys.push({ envKey, secretName })
  }
  return keys
}

export function parseCredentials(input: string, raw: string): Credentials | undefined {
  if (raw.trim() === '') return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(raw)
  } catch {
    // The message must not echo the value: it holds a password.
    throw new ConfigError(input, 'is not valid JSON; expected {"email": "...", "password": "..."}')
  }
  const record = parsed as Record<string, unknown> | null
  if (
    record === null ||
    typeof record !== 'object' ||
    Array.isArray(record) ||
    typeof record.email !== 'string' ||
    typeof record.password !== 'string' ||
    record.email.trim() === '' ||
    record.password === ''
  ) {
    throw new ConfigError(
      input,
      'expected a JSON object {"email": "...", "password": "..."} with non-empty strings'
    )
  }
  return { email: record.email.trim(), password: record.password }
}

export function url(read: InputReader, name: string): string {
  const raw = read(name).trim()
  let parsed: URL
  try {
    parsed = new URL(raw)
  } catch {
    throw new ConfigError(name, `"${raw}" is not a valid URL`)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new ConfigError(name, `expected an http:// or https:// URL, got "${raw}"`)
  }
  if (/['"\s\\`$]/.test(raw)) {
    throw new ConfigError(name, `"${raw}" contains quotes, spaces or shell characters`)
  }
  return raw
}

export function relativePath(read: InputReader, name: string): string {
  const value = required(read, name)
  if (!RELATIVE_FILE.test(value) || value.split('/').includes('..')) {
    throw new ConfigError(name, `expected a path inside deploy-path, got "${value}"`)
  }
  return value
}

export function hostKeyPin(read: InputReader): HostKeyPin {
  const knownHosts = read('ssh-known-hosts').trim()
  const fingerprint = read('ssh-fingerprint').trim()
  const skip = bool(read, 'ssh-insecure-skip-host-key-check', false)
  if (knownHosts !== '' && fingerprint !== '') {
    throw new ConfigError(
      'ssh-fingerprint',
      'give either ssh-known-hosts or ssh-fingerprint, not both'
    )
  }
  if (fingerprint !== '') {
    const match = /^SHA256:([A-Za-z0-9+/]{43})=?$/.exec(
      fingerprint.split(/\s+/).find((p) => p.startsWith('SHA256:')) ?? ''
    )
    if (match === null) {
      throw new ConfigError(
        'ssh-fingerprint',
        'expected "SHA256:" followed by 43 base64 characters, as "ssh-keygen -lf" prints it'
      )
    }
    return { kind: 'fingerprint', fingerprint: `SHA256:${match[1]}` }
  }
  if (knownHosts !== '') return { kind: 'known-hosts', lines: knownHosts }
  if (skip) return { kind: 'insecure-skip' }
  throw new ConfigError(
    'ssh-known-hosts',
    'the host key must be pinned: set ssh-known-hosts (ssh-keyscan -p PORT HOST) or ssh-fingerprint (ssh-keyscan -p PORT HOST | ssh-keygen -lf -); ssh-insecure-skip-host-key-check: true is the only way around it'
  )
}

export function reason(read: InputReader): string {
  const value = read('reason').trim() || 'routine'
  if (value.length > 200 || /[\r\n]/.test(value)) {
    throw new ConfigError('reason', 'expected one line of at most 200 characters')
  }
  return value
}

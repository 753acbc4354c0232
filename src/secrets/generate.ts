// New secret values: `bytes` from the OS CSPRNG, standard base64, one line
// (unlike `openssl rand -base64 64`, which wraps at 64 characters).
import * as core from '@actions/core'
import { randomBytes } from 'node:crypto'

export function generateSecret(bytes: number): string {
  if (!Number.isInteger(bytes) || bytes < 32 || bytes > 1024) {
    throw new RangeError(`secret size must be 32 to 1024 bytes, got ${bytes}`)
  }
  const value = randomBytes(bytes).toString('base64')
  core.setSecret(value)
  return value
}

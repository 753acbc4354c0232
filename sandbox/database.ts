// The database of the sandbox deployment: the seed users (scrypt hashes as
// the CloudBox stand-in checks them) and a reset to exactly those users and
// no refresh tokens.

import crypto from 'node:crypto'
import pg from 'pg'
import type { Credentials, State } from './common.js'

/** Same format as sandbox/app/server.mjs: scrypt$<salt b64>$<key b64>. */
export function hashPassword(password: string): string {
  const salt = crypto.randomBytes(16)
  return `scrypt$${salt.toString('base64')}$${crypto.scryptSync(password, salt, 32).toString('base64')}`
}

export function verifyPassword(password: string, stored: string): boolean {
  const [scheme, salt, key] = stored.split('$')
  if (scheme !== 'scrypt' || !salt || !key) return false
  const expected = Buffer.from(key, 'base64')
  return crypto.timingSafeEqual(
    expected,
    crypto.scryptSync(password, Buffer.from(salt, 'base64'), expected.length)
  )
}

/** A connected client of the sandbox database, over loopback (the caller ends it). */
export async function databaseClient(state: State): Promise<pg.Client> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: state.postgresPort,
    user: state.postgres.user,
    password: state.postgres.password,
    database: state.postgres.db
  })
  await client.connect()
  return client
}

/** Exactly the seed users (admin and user, with their passwords) and no refresh token. */
export async function reseedDatabase(state: State): Promise<void> {
  const client = await databaseClient(state)
  try {
    const seeds: Array<[Credentials, string]> = [
      [state.admin, 'ADMIN'],
      [state.user, 'USER']
    ]
    await client.query('BEGIN')
    await client.query('DELETE FROM refresh_tokens')
    await client.query('DELETE FROM users WHERE email <> ALL($1)', [seeds.map(([c]) => c.email)])
    const { rows } = await client.query<{ email: string; passwordHash: string; role: string }>(
      'SELECT email, "passwordHash", role FROM users'
    )
    for (const [cred, role] of seeds) {
      const row = rows.find((r) => r.email === cred.email)
      if (row && row.role === role && verifyPassword(cred.password, row.passwordHash)) continue
      await client.query(
        `INSERT INTO users (email, "passwordHash", role) VALUES ($1, $2, $3)
         ON CONFLICT (email) DO UPDATE SET "passwordHash" = EXCLUDED."passwordHash", role = EXCLUDED.role`,
        [cred.email, hashPassword(cred.password), role]
      )
    }
    await client.query('COMMIT')
  } finally {
    await client.end()
  }
}

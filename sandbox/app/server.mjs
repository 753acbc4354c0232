// CloudBox stand-in backend for the sandbox (see sandbox/README.md).
//
// Plain JavaScript, run by the host's node inside the `backend` container
// (and, with --worker, inside `worker`). It implements the part of CloudBox's
// API the JWT rotation touches (/api/auth/login, /api/auth/refresh,
// /api/health/ping, /api/health, /api/users/me) with `jsonwebtoken` (HS256)
// and keeps users and refresh tokens in PostgreSQL, reading every secret from
// the environment compose gives it. A "dual-secret build": verification also
// accepts JWT_SECRET_PREVIOUS / JWT_REFRESH_SECRET_PREVIOUS when compose
// passes them (signing always uses the current secret).

import crypto from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'

// Handlers first: compose down sends SIGTERM.
let shutdown = (code) => process.exit(code)
process.on('SIGTERM', () => shutdown(0))
process.on('SIGINT', () => shutdown(0))

const isWorker = process.argv.includes('--worker')
const role = isWorker ? 'worker' : 'backend'
const loginFailures = new Map() // email -> [epoch ms of failures]
let rateLimitEpoch // content of <faults>/rate-limit-reset when last read (undefined: never read)

function log(line) {
  console.log(`${new Date().toISOString()} [${role}] ${line}`)
}
function logError(line) {
  console.error(`${new Date().toISOString()} [${role}] ${line}`)
}

const { default: jwt } = await import('jsonwebtoken')

// ---- configuration, checked like CloudBox does with NODE_ENV=production ----

const PLACEHOLDER = /your-|change-me|minimum-32-characters/i
function checkSecret(name) {
  const value = process.env[name]
  if (!value) {
    // What jsonwebtoken itself says when asked to sign with an empty secret.
    let message = 'secretOrPrivateKey must have a value'
    try {
      jwt.sign({}, value ?? '')
    } catch (err) {
      message = err.message
    }
    return `Error: ${message} (${name} is not set)`
  }
  if (value.length < 32) return `Error: ${name} must be at least 32 characters`
  if (process.env.NODE_ENV === 'production' && PLACEHOLDER.test(value)) {
    return `Error: ${name} is still a placeholder value`
  }
  return null
}
const configErrors = ['JWT_SECRET', 'JWT_REFRESH_SECRET', 'ENCRYPTION_KEY']
  .map(checkSecret)
  .filter(Boolean)
if (configErrors.length > 0) {
  for (const line of configErrors) logError(line)
  logError('refusing to start: invalid configuration')
  process.exit(1)
}

const ACCESS_SECRETS = [process.env.JWT_SECRET, process.env.JWT_SECRET_PREVIOUS].filter(Boolean)
const REFRESH_SECRETS = [
  process.env.JWT_REFRESH_SECRET,
  process.env.JWT_REFRESH_SECRET_PREVIOUS
].filter(Boolean)
const ACCESS_TTL = process.env.JWT_EXPIRES_IN || '15m'
const REFRESH_TTL = process.env.JWT_REFRESH_EXPIRES_IN || '7d'
const FAULTS_DIR = process.env.SANDBOX_FAULTS_DIR || '/sandbox-faults'
log(
  `secrets loaded: access=${ACCESS_SECRETS.length} refresh=${REFRESH_SECRETS.length} (current${
    ACCESS_SECRETS.length > 1 || REFRESH_SECRETS.length > 1 ? ' + previous' : ''
  })`
)

if (isWorker) {
  log('worker ready, waiting for jobs')
  setInterval(() => {}, 1 << 30)
} else {
  await startBackend()
}

// ---- backend ----

async function startBackend() {
  const { default: pg } = await import('pg')
  const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 5 })
  pool.on('error', (err) => logError(`database pool error: ${err.message}`))

  for (let attempt = 1; ; attempt++) {
    try {
      await migrateAndSeed(pool)
      break
    } catch (err) {
      if (attempt >= 60) {
        logError(`Error: database not ready: ${err.message}`)
        process.exit(1)
      }
      await new Promise((r) => setTimeout(r, 500))
    }
  }

  const server = http.createServer((req, res) => {
    handle(pool, req, res).catch((err) => {
      logError(`${req.method} ${req.url} 500 ${err.stack || err}`)
      if (!res.headersSent)
        send(res, 500, { error: { code: 'INTERNAL_ERROR', message: 'Internal error' } })
    })
  })
  server.keepAliveTimeout = 1000
  shutdown = (code) => {
    log('SIGTERM received, shutting down')
    server.close()
    server.closeAllConnections()
    pool.end().finally(() => process.exit(code))
    setTimeout(() => process.exit(code), 1000).unref()
  }
  const port = Number(process.env.PORT || 3001)
  // LISTEN_FD: a socket bound with SO_REUSEPORT by reuseport-listen.py, so an
  // old and a new task can serve the port side by side (Swarm start-first).
  // READY_FILE: written once this process listens, for a container health
  // check that must see this task, not another one sharing the port.
  const listening = (how) => () => {
    log(`listening on http://127.0.0.1:${port}${how}`)
    if (process.env.READY_FILE) fs.writeFileSync(process.env.READY_FILE, `${process.pid}\n`)
  }
  if (process.env.LISTEN_FD) {
    server.listen({ fd: Number(process.env.LISTEN_FD) }, listening(' (SO_REUSEPORT)'))
  } else server.listen(port, '127.0.0.1', listening(''))
}

async function migrateAndSeed(pool) {
  const client = await pool.connect()
  try {
    await client.query('SELECT pg_advisory_lock(424242)')
    await client.query(`
      CREATE TABLE IF NOT EXISTS users (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        email text NOT NULL UNIQUE,
        "passwordHash" text NOT NULL,
        role text NOT NULL DEFAULT 'USER' CHECK (role IN ('ADMIN', 'USER')),
        "createdAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
      );
      CREATE TABLE IF NOT EXISTS refresh_tokens (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        "tokenHash" text NOT NULL UNIQUE,
        jti text NOT NULL UNIQUE,
        "userId" uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        "familyId" text NOT NULL,
        "expiresAt" timestamp(3) NOT NULL,
        "revokedAt" timestamp(3),
        "createdAt" timestamp(3) NOT NULL DEFAULT CURRENT_TIMESTAMP
      );
      CREATE INDEX IF NOT EXISTS "refresh_tokens_userId_idx" ON refresh_tokens ("userId");
    `)
    log('migrations applied')
    const seeds = [
      [process.env.ADMIN_EMAIL, process.env.ADMIN_PASSWORD, 'ADMIN'],
      [process.env.SANDBOX_USER_EMAIL, process.env.SANDBOX_USER_PASSWORD, 'USER']
    ]
    for (const [email, password, userRole] of seeds) {
      if (!email || !password) continue
      // Keep an existing hash when it still matches (stable across restarts).
      const existing = await client.query('SELECT "passwordHash" FROM users WHERE email = $1', [
        email
      ])
      if (existing.rows[0] && verifyPassword(password, existing.rows[0].passwordHash)) {
        await client.query('UPDATE users SET role = $2 WHERE email = $1', [email, userRole])
        continue
      }
      await client.query(
        `INSERT INTO users (email, "passwordHash", role) VALUES ($1, $2, $3)
         ON CONFLICT (email) DO UPDATE SET "passwordHash" = EXCLUDED."passwordHash", role = EXCLUDED.role`,
        [email, hashPassword(password), userRole]
      )
    }
    log('seed users present')
  } finally {
    await client.query('SELECT pg_advisory_unlock(424242)').catch(() => {})
    client.release()
  }
}

// Same format as sandbox/index.ts writes in reset(): scrypt$<salt b64>$<key b64>
function hashPassword(password) {
  const salt = crypto.randomBytes(16)
  const key = crypto.scryptSync(password, salt, 32)
  return `scrypt$${salt.toString('base64')}$${key.toString('base64')}`
}
function verifyPassword(password, stored) {
  const [scheme, salt, key] = String(stored).split('$')
  if (scheme !== 'scrypt' || !salt || !key) return false
  const expected = Buffer.from(key, 'base64')
  const actual = crypto.scryptSync(password, Buffer.from(salt, 'base64'), expected.length)
  return crypto.timingSafeEqual(expected, actual)
}

/** A file in the sandbox's faults dir (trimmed), or null. */
function readFault(name) {
  try {
    return fs.readFileSync(path.join(FAULTS_DIR, name), 'utf8').trim()
  } catch {
    return null
  }
}

const sha256 = (text) => crypto.createHash('sha256').update(text).digest('hex')

function send(res, status, body, headers = {}) {
  const text = body === undefined ? '' : JSON.stringify(body)
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    ...headers
  })
  res.end(res.req.method === 'HEAD' ? undefined : text)
}

async function readJson(req) {
  const chunks = []
  for await (const chunk of req) chunks.push(chunk)
  if (chunks.length === 0) return {}
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    return null
  }
}

function cookies(req) {
  const out = {}
  for (const part of (req.headers.cookie || '').split(';')) {
    const i = part.indexOf('=')
    if (i > 0) out[part.slice(0, i).trim()] = decodeURIComponent(part.slice(i + 1).trim())
  }
  return out
}

// Tries the current secret, then the previous one; logs failures the way an
// Express error handler would ("JsonWebTokenError: invalid signature").
function verifyToken(req, token, secrets, type) {
  let lastError
  for (const secret of secrets) {
    try {
      const payload = jwt.verify(token, secret, { algorithms: ['HS256'] })
      if (payload.type !== type) throw new jwt.JsonWebTokenError('invalid token type')
      return payload
    } catch (err) {
      lastError = err
      if (!(err.name === 'JsonWebTokenError' && err.message === 'invalid signature')) break
    }
  }
  logError(`${req.method} ${req.url} 401 ${lastError.name}: ${lastError.message}`)
  return null
}

async function authenticate(pool, req, res) {
  const header = req.headers.authorization || ''
  const match = /^Bearer (.+)$/.exec(header)
  if (!match) {
    send(res, 401, { error: { code: 'UNAUTHORIZED', message: 'Authentication required' } })
    return null
  }
  const payload = verifyToken(req, match[1], ACCESS_SECRETS, 'access')
  if (!payload) {
    send(res, 401, { error: { code: 'INVALID_TOKEN', message: 'Invalid or expired token' } })
    return null
  }
  const { rows } = await pool.query(
    'SELECT id, email, role, "createdAt" FROM users WHERE id = $1',
    [payload.userId]
  )
  if (!rows[0]) {
    send(res, 401, { error: { code: 'INVALID_TOKEN', message: 'User no longer exists' } })
    return null
  }
  return rows[0]
}

async function issueTokens(pool, user, familyId) {
  const accessToken = jwt.sign(
    { userId: user.id, email: user.email, role: user.role, type: 'access' },
    ACCESS_SECRETS[0],
    { algorithm: 'HS256', expiresIn: ACCESS_TTL }
  )
  const jti = crypto.randomUUID()
  const refreshToken = jwt.sign(
    { userId: user.id, jti, familyId, type: 'refresh' },
    REFRESH_SECRETS[0],
    {
      algorithm: 'HS256',
      expiresIn: REFRESH_TTL
    }
  )
  const { exp } = jwt.decode(refreshToken)
  await pool.query(
    `INSERT INTO refresh_tokens ("tokenHash", jti, "userId", "familyId", "expiresAt")
     VALUES ($1, $2, $3, $4, to_timestamp($5))`,
    [sha256(refreshToken), jti, user.id, familyId, exp]
  )
  const cookie = `refreshToken=${refreshToken}; Max-Age=${7 * 24 * 3600}; Path=/api/auth; HttpOnly; SameSite=Strict`
  return { accessToken, cookie }
}

const publicUser = (u) => ({ id: u.id, email: u.email, role: u.role, createdAt: u.createdAt })

async function handle(pool, req, res) {
  const started = Date.now()
  const url = new URL(req.url, 'http://localhost')
  const route = `${req.method === 'HEAD' ? 'GET' : req.method} ${url.pathname.replace(/\/+$/, '')}`
  res.on('finish', () => {
    if (url.pathname !== '/api/health/ping') {
      log(`${req.method} ${url.pathname} ${res.statusCode} ${Date.now() - started}ms`)
    }
  })

  switch (route) {
    case 'GET /api/health/ping': {
      // Fault: healthy only while JWT_SECRET hashes to the given value.
      const wanted = readFault('healthy-only-with-secret-sha256')
      if (wanted && wanted !== sha256(ACCESS_SECRETS[0])) {
        return send(res, 503, { status: 'unhealthy' })
      }
      return send(res, 200, { status: 'ok' })
    }

    case 'GET /api/health': {
      const user = await authenticate(pool, req, res)
      if (!user) return
      if (user.role !== 'ADMIN') {
        return send(res, 403, { error: { code: 'FORBIDDEN', message: 'Admin access required' } })
      }
      let database = 'healthy'
      try {
        await pool.query('SELECT 1')
      } catch {
        database = 'unhealthy'
      }
      const ok = database === 'healthy'
      return send(res, ok ? 200 : 503, {
        status: ok ? 'healthy' : 'unhealthy',
        timestamp: new Date().toISOString(),
        checks: { database }
      })
    }

    case 'GET /api/users/me': {
      const user = await authenticate(pool, req, res)
      if (!user) return
      return send(res, 200, publicUser(user))
    }

    case 'POST /api/auth/login': {
      const body = await readJson(req)
      const email = typeof body?.email === 'string' ? body.email.trim().toLowerCase() : ''
      const password = typeof body?.password === 'string' ? body.password : ''
      if (!email || !password) {
        return send(res, 400, {
          error: { code: 'VALIDATION_ERROR', message: 'email and password are required' }
        })
      }
      // reset() rewrites this file to forget failed logins.
      const epoch = readFault('rate-limit-reset')
      if (rateLimitEpoch !== undefined && epoch !== rateLimitEpoch) loginFailures.clear()
      rateLimitEpoch = epoch
      const windowStart = Date.now() - 15 * 60 * 1000
      const failures = (loginFailures.get(email) || []).filter((t) => t > windowStart)
      loginFailures.set(email, failures)
      if (failures.length >= 5) {
        return send(
          res,
          429,
          {
            error: {
              code: 'TOO_MANY_ATTEMPTS',
              message: 'Too many failed login attempts, try again later'
            }
          },
          { 'Retry-After': '900' }
        )
      }
      const { rows } = await pool.query(
        'SELECT id, email, role, "passwordHash", "createdAt" FROM users WHERE email = $1',
        [email]
      )
      const user = rows[0]
      if (!user || !verifyPassword(password, user.passwordHash)) {
        failures.push(Date.now())
        return send(res, 401, {
          error: { code: 'INVALID_CREDENTIALS', message: 'Invalid email or password' }
        })
      }
      const { accessToken, cookie } = await issueTokens(pool, user, crypto.randomUUID())
      return send(res, 200, { user: publicUser(user), accessToken }, { 'Set-Cookie': cookie })
    }

    case 'POST /api/auth/refresh': {
      const token = cookies(req).refreshToken
      const reject = (message) =>
        send(
          res,
          401,
          { error: { code: 'INVALID_REFRESH_TOKEN', message } },
          { 'Set-Cookie': 'refreshToken=; Max-Age=0; Path=/api/auth; HttpOnly; SameSite=Strict' }
        )
      if (!token) return reject('No refresh token')
      const payload = verifyToken(req, token, REFRESH_SECRETS, 'refresh')
      if (!payload) return reject('Invalid refresh token')
      const { rows } = await pool.query(
        'SELECT id, "userId", "familyId", "revokedAt", "expiresAt" FROM refresh_tokens WHERE "tokenHash" = $1',
        [sha256(token)]
      )
      const row = rows[0]
      if (!row) return reject('Refresh token not found')
      if (row.revokedAt) {
        // Reuse of a rotated token: revoke the whole family.
        await pool.query(
          'UPDATE refresh_tokens SET "revokedAt" = CURRENT_TIMESTAMP WHERE "familyId" = $1 AND "revokedAt" IS NULL',
          [row.familyId]
        )
        logError(`refresh token reuse detected for family ${row.familyId}`)
        return reject('Refresh token revoked')
      }
      if (new Date(row.expiresAt).getTime() < Date.now()) return reject('Refresh token expired')
      await pool.query('UPDATE refresh_tokens SET "revokedAt" = CURRENT_TIMESTAMP WHERE id = $1', [
        row.id
      ])
      const users = await pool.query(
        'SELECT id, email, role, "createdAt" FROM users WHERE id = $1',
        [row.userId]
      )
      if (!users.rows[0]) return reject('User no longer exists')
      const { accessToken, cookie } = await issueTokens(pool, users.rows[0], row.familyId)
      return send(res, 200, { accessToken }, { 'Set-Cookie': cookie })
    }

    default:
      return send(res, 404, {
        error: { code: 'NOT_FOUND', message: `Cannot ${req.method} ${url.pathname}` }
      })
  }
}

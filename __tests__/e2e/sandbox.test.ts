// The sandbox itself: proves the test bed behaves like a CloudBox host before
// the rotation's e2e suites rely on it.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals'
import { spawn } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import jwt from 'jsonwebtoken'
import { runCommand, startSandbox, type Sandbox } from '../../sandbox/index.js'

// testTimeout is a global jest option, not a per-project one.
jest.setTimeout(300000)

let sb: Sandbox
let tmp: string
let keyFile: string
let knownHostsFile: string
let pristineEnv: Buffer
const timings: Record<string, number> = {}

const envValue = (text: string, key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(text)?.[1]

async function editEnv(edit: (text: string) => string) {
  const file = path.join(sb.deployPath, '.env')
  fs.writeFileSync(file, edit(fs.readFileSync(file, 'utf8')))
}

function ssh(command: string, knownHosts = knownHostsFile) {
  return runCommand('ssh', [
    '-F',
    '/dev/null',
    '-i',
    keyFile,
    '-p',
    String(sb.ssh.port),
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `UserKnownHostsFile=${knownHosts}`,
    '-o',
    'ConnectTimeout=10',
    `${sb.ssh.user}@${sb.ssh.host}`,
    command
  ])
}

function wrapper(args: string[], input?: string) {
  return runCommand(sb.composeWrapper, ['-f', sb.composeFile, ...args], {
    cwd: sb.deployPath,
    env: { ...process.env, DOCKER_HOST: sb.dockerHost },
    input
  })
}

async function login(who: 'admin' | 'user') {
  const res = await sb.http('POST', '/api/auth/login', { body: sb[who] })
  expect(res.status).toBe(200)
  const cookie = res.setCookie?.find((c) => c.startsWith('refreshToken='))
  expect(cookie).toMatch(/HttpOnly/)
  expect(cookie).toMatch(/Path=\/api\/auth/)
  return {
    accessToken: res.body.accessToken as string,
    cookie: cookie!.split(';')[0],
    user: res.body.user
  }
}

beforeAll(async () => {
  const t0 = Date.now()
  sb = await startSandbox({ log: (line) => console.log(line) })
  timings.start = Date.now() - t0
  console.log(`startSandbox took ${timings.start} ms`)
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sandbox-test-'))
  keyFile = path.join(tmp, 'id')
  fs.writeFileSync(keyFile, sb.ssh.privateKey, { mode: 0o600 })
  knownHostsFile = path.join(tmp, 'known_hosts')
  fs.writeFileSync(knownHostsFile, sb.ssh.knownHosts + '\n')
  pristineEnv = await sb.readEnvFile()
}, 180000)

afterAll(async () => {
  await sb?.stop()
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
  console.log(`sandbox timings (ms): ${JSON.stringify(timings)}`)
})

describe('sandbox: host and SSH', () => {
  it('builds a CloudBox-shaped deploy dir with a 0600 .env of real random secrets', () => {
    const text = pristineEnv.toString('utf8')
    expect(fs.statSync(path.join(sb.deployPath, '.env')).mode & 0o777).toBe(0o600)
    expect(text).toMatch(/^# CloudBox - Production Environment Variables$/m)
    expect(text).toMatch(/^# ============ SANDBOX/m)
    for (const key of ['JWT_SECRET', 'JWT_REFRESH_SECRET', 'ENCRYPTION_KEY']) {
      const value = envValue(text, key)!
      expect(value).toMatch(/^[A-Za-z0-9+/]+=*$/)
      expect(value.length).toBeGreaterThanOrEqual(32)
    }
    expect(envValue(text, 'APP_PORT')).toBe(String(sb.appPort))
    const compose = fs.readFileSync(path.join(sb.deployPath, sb.composeFile), 'utf8')
    expect(compose).toContain('JWT_SECRET: "${JWT_SECRET:?JWT_SECRET is required}"')
    expect(compose).toContain('JWT_SECRET_PREVIOUS: "${JWT_SECRET_PREVIOUS:-}"')
    expect(compose).not.toContain('env_file')
    const single = fs.readFileSync(path.join(sb.deployPath, sb.composeFiles.singleSecret), 'utf8')
    expect(single).not.toContain('_PREVIOUS')
  })

  it('logs in over SSH with the pinned host key, and refuses another key', async () => {
    const r = await ssh('id -u; printf "%s\\n" "$DOCKER_HOST"; docker-compose version --short')
    expect(r.stderr).not.toMatch(/Host key verification failed/)
    expect(r.code).toBe(0)
    expect(r.stdout.split('\n')).toEqual(['0', sb.dockerHost, '1.29.2', ''])

    const fp = await runCommand('ssh-keygen', ['-lf', knownHostsFile])
    expect(fp.stdout.split(' ')[1]).toBe(sb.ssh.fingerprint)
    expect(sb.ssh.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/)

    const other = path.join(tmp, 'other')
    await runCommand('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other])
    const wrongPin = path.join(tmp, 'known_hosts_wrong')
    const otherPub = fs.readFileSync(`${other}.pub`, 'utf8').split(' ')
    fs.writeFileSync(wrongPin, `[127.0.0.1]:${sb.ssh.port} ${otherPub[0]} ${otherPub[1]}\n`)
    const refused = await ssh('true', wrongPin)
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toMatch(
      /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/
    )
  })

  it('serves SFTP', async () => {
    const local = path.join(tmp, 'upload')
    fs.writeFileSync(local, 'staged\n')
    const remote = path.join(sb.deployPath, 'sftp-probe')
    const batch = path.join(tmp, 'batch')
    fs.writeFileSync(batch, `put ${local} ${remote}\nchmod 600 ${remote}\n`)
    const r = await runCommand('sftp', [
      '-F',
      '/dev/null',
      '-i',
      keyFile,
      '-P',
      String(sb.ssh.port),
      '-o',
      'BatchMode=yes',
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      `UserKnownHostsFile=${knownHostsFile}`,
      '-b',
      batch,
      `${sb.ssh.user}@${sb.ssh.host}`
    ])
    expect(r.code).toBe(0)
    expect(fs.readFileSync(remote, 'utf8')).toBe('staged\n')
    expect(fs.statSync(remote).mode & 0o777).toBe(0o600)
    fs.rmSync(remote)
  })

  it("runs the runbook's psql command over SSH", async () => {
    const r = await ssh(
      `cd ${sb.deployPath} && docker-compose -f docker-compose.prod.yml exec -T postgres psql -U cloudbox -c "SELECT count(*) FROM refresh_tokens;"`
    )
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/count\s*\n-+\n\s*\d+\n\(1 row\)/)
  })
})

describe('sandbox: the CloudBox stand-in app', () => {
  it('admin login -> /api/health 200; user login -> /api/users/me 200, /api/health 403', async () => {
    const admin = await login('admin')
    expect(admin.user).toMatchObject({ email: sb.admin.email, role: 'ADMIN' })
    const health = await sb.http('GET', '/api/health', { token: admin.accessToken })
    expect(health.status).toBe(200)
    expect(health.body).toMatchObject({ status: 'healthy', checks: { database: 'healthy' } })

    const user = await login('user')
    const me = await sb.http('GET', '/api/users/me', { token: user.accessToken })
    expect(me.status).toBe(200)
    expect(me.body).toMatchObject({ email: sb.user.email, role: 'USER' })
    expect((await sb.http('GET', '/api/health', { token: user.accessToken })).status).toBe(403)
    expect((await sb.http('GET', '/api/health')).status).toBe(401)

    const ping = await sb.http('GET', '/api/health/ping')
    expect(ping).toMatchObject({ status: 200, body: { status: 'ok' } })
    // The URLs handed to the action reach the same app.
    expect(sb.urls.health).toBe(`http://localhost:${sb.appPort}/api/health/ping`)
    const curl = await runCommand('curl', ['-fsS', sb.urls.health])
    expect(curl.stdout).toBe('{"status":"ok"}')
  })

  it('rejects a wrong password with 401 INVALID_CREDENTIALS, then 429 after 5 failures', async () => {
    const bad = { email: sb.user.email, password: 'wrong-password' }
    for (let i = 0; i < 5; i++) {
      const r = await sb.http('POST', '/api/auth/login', { body: bad })
      expect(r.status).toBe(401)
      expect(r.body.error.code).toBe('INVALID_CREDENTIALS')
    }
    expect((await sb.http('POST', '/api/auth/login', { body: sb.user })).status).toBe(429)
    await sb.reset() // forgets the failures
    await login('user')
  })

  it('stores refresh tokens as SHA-256 hashes; refresh works, then fails once the rows are deleted', async () => {
    const { cookie } = await login('user')
    const token = cookie.slice('refreshToken='.length)
    const row = await sb.psql(
      `SELECT u.email, t."familyId" IS NOT NULL, t."revokedAt" IS NULL, t."expiresAt" > now() + interval '6 days'
       FROM refresh_tokens t JOIN users u ON u.id = t."userId"
       WHERE t."tokenHash" = '${crypto.createHash('sha256').update(token).digest('hex')}' AND t.jti <> ''`
    )
    expect(row.trim()).toBe(`${sb.user.email}|t|t|t`)

    const refreshed = await sb.http('POST', '/api/auth/refresh', { cookie })
    expect(refreshed.status).toBe(200)
    expect(typeof refreshed.body.accessToken).toBe('string')
    const next = refreshed.setCookie!.find((c) => c.startsWith('refreshToken='))!.split(';')[0]
    // The used token is revoked (rotation).
    expect((await sb.http('POST', '/api/auth/refresh', { cookie })).status).toBe(401)

    const fresh = await login('admin')
    await sb.psql('DELETE FROM refresh_tokens;')
    expect((await sb.http('POST', '/api/auth/refresh', { cookie: fresh.cookie })).status).toBe(401)
    expect((await sb.http('POST', '/api/auth/refresh', { cookie: next })).status).toBe(401)
  })

  it('rejects a token signed with another secret and logs "invalid signature"', async () => {
    const { user } = await login('admin')
    const forged = jwt.sign(
      { userId: user.id, email: user.email, role: 'ADMIN', type: 'access' },
      crypto.randomBytes(64).toString('base64'),
      { algorithm: 'HS256', expiresIn: '15m' }
    )
    expect((await sb.http('GET', '/api/health', { token: forged })).status).toBe(401)
    const logs = await sb.compose(['logs', '--no-color', 'backend'])
    expect(logs.stdout).toMatch(/JsonWebTokenError: invalid signature/)
  })

  it('accepts a token signed with JWT_SECRET_PREVIOUS when compose passes it (dual-secret build)', async () => {
    const oldSecret = envValue(pristineEnv.toString(), 'JWT_SECRET')!
    const { accessToken: oldToken } = await login('admin')
    const newSecret = crypto.randomBytes(64).toString('base64')
    await editEnv((t) =>
      t.replace(
        /^JWT_SECRET=.*$/m,
        () => `JWT_SECRET=${newSecret}\nJWT_SECRET_PREVIOUS=${oldSecret}`
      )
    )
    const up = await sb.compose(['up', '-d'])
    expect(up.code).toBe(0)
    expect(up.stderr).toMatch(/Recreating cloudbox-backend/)
    await expect(waitForPing(200)).resolves.toBe(200)
    expect((await sb.http('GET', '/api/health', { token: oldToken })).status).toBe(200)
    const { accessToken } = await login('admin')
    expect(() => jwt.verify(accessToken, newSecret, { algorithms: ['HS256'] })).not.toThrow()

    // The single-secret variant never hands the previous secret to the app.
    const config = await runCommand(
      'docker-compose',
      ['-f', sb.composeFiles.singleSecret, 'config'],
      {
        cwd: sb.deployPath,
        env: { ...process.env, DOCKER_HOST: sb.dockerHost }
      }
    )
    expect(config.code).toBe(0)
    expect(config.stdout).not.toContain('JWT_SECRET_PREVIOUS')
    await sb.reset()
  })
})

async function waitForPing(want: number, timeoutMs = 30000): Promise<number> {
  const deadline = Date.now() + timeoutMs
  let last = 0
  while (Date.now() < deadline) {
    last = await sb
      .http('GET', '/api/health/ping')
      .then((r) => r.status)
      .catch(() => 0)
    if (last === want) return last
    await new Promise((r) => setTimeout(r, 200))
  }
  return last
}

describe('sandbox: compose and configuration failures', () => {
  it('compose refuses `up` when JWT_SECRET is empty in .env', async () => {
    await editEnv((t) => t.replace(/^JWT_SECRET=.*$/m, 'JWT_SECRET='))
    const r = await sb.compose(['up', '-d'])
    expect(r.code).not.toBe(0)
    expect(r.stderr).toMatch(/JWT_SECRET is required/)
    await sb.reset()
  })

  it('the app refuses to start with a short secret and says why in its logs', async () => {
    await editEnv((t) => t.replace(/^JWT_REFRESH_SECRET=.*$/m, 'JWT_REFRESH_SECRET=too-short'))
    expect((await sb.compose(['up', '-d'])).code).toBe(0)
    await expect(waitForPing(0)).resolves.toBe(0)
    const deadline = Date.now() + 20000
    let logs = ''
    while (Date.now() < deadline && !/worker.*JWT_REFRESH_SECRET must be at least 32/s.test(logs)) {
      logs = (await sb.compose(['logs', '--no-color', 'backend', 'worker'])).stdout
      await new Promise((r) => setTimeout(r, 300))
    }
    expect(logs).toMatch(
      /cloudbox-backend.*Error: JWT_REFRESH_SECRET must be at least 32 characters/
    )
    expect(logs).toMatch(
      /cloudbox-worker.*Error: JWT_REFRESH_SECRET must be at least 32 characters/
    )
    await sb.reset()
    expect((await sb.http('GET', '/api/health/ping')).status).toBe(200)
  })
})

describe('sandbox: compose fault wrapper', () => {
  afterAll(() => sb.setComposeFaults([]))

  it('passes through untouched without faults', async () => {
    await sb.setComposeFaults([])
    const r = await wrapper(['config', '--services'])
    expect(r.code).toBe(0)
    expect(r.stdout.trim().split('\n').sort()).toEqual(
      [
        'backend',
        'frontend',
        'glitchtip',
        'glitchtip-postgres',
        'glitchtip-worker',
        'init',
        'postgres',
        'redis',
        'worker'
      ].sort()
    )
  })

  it('fail: exits 1 without running compose, matching without the leading -f option', async () => {
    await sb.setComposeFaults([{ match: '^ps$', action: 'fail' }])
    const r = await wrapper(['ps'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/injected failure/)
    expect(r.stdout).toBe('')
    expect((await wrapper(['ps', '-q'])).code).toBe(0) // ^ps$ does not match "ps -q"
    const calls = fs.readFileSync(sb.composeCallLog, 'utf8')
    expect(calls).toMatch(/\tfail\tps\n/)
    expect(calls).toMatch(/\tpass\tps -q\n/)
  })

  it('times: fires only on the first N matching calls', async () => {
    await sb.setComposeFaults([{ match: '^ps', action: 'fail', times: 1 }])
    expect((await wrapper(['ps'])).code).toBe(1)
    expect((await wrapper(['ps'])).code).toBe(0)
  })

  it('hang: never returns, dies with its process group', async () => {
    await sb.setComposeFaults([{ match: '^down', action: 'hang' }])
    const child = spawn(sb.composeWrapper, ['-f', sb.composeFile, 'down'], {
      cwd: sb.deployPath,
      env: { ...process.env, DOCKER_HOST: sb.dockerHost },
      detached: true,
      stdio: 'ignore'
    })
    const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_c, s) => r(s)))
    await new Promise((r) => setTimeout(r, 1500))
    expect(child.exitCode).toBeNull()
    process.kill(-child.pid!, 'SIGTERM')
    await expect(exited).resolves.toBe('SIGTERM')
    // Nothing was stopped.
    expect((await sb.http('GET', '/api/health/ping')).status).toBe(200)
  })

  it('slow: waits N seconds, then runs compose', async () => {
    await sb.setComposeFaults([{ match: '^ps -q$', action: 'slow', seconds: 1 }])
    const t0 = Date.now()
    const r = await wrapper(['ps', '-q'])
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000)
    expect(r.code).toBe(0)
    expect(r.stdout.trim().split('\n')).toHaveLength(9)
  })

  it('run-then-fail: runs compose (stdin included), then exits 1', async () => {
    await sb.setComposeFaults([{ match: '^exec -T postgres psql', action: 'run-then-fail' }])
    const r = await wrapper(
      ['exec', '-T', 'postgres', 'psql', '-U', 'cloudbox', '-At'],
      'SELECT 40 + 2;\n'
    )
    expect(r.code).toBe(1)
    expect(r.stdout.trim()).toBe('42')
    expect(r.stderr).toMatch(/injected failure after running/)
  })

  it("run-then-exec: runs compose, then the command, and exits with compose's code", async () => {
    await sb.setComposeFaults([
      {
        match: '^exec -T postgres pg_isready',
        action: 'run-then-exec',
        command: 'echo ran > exec-marker'
      }
    ])
    const r = await wrapper(['exec', '-T', 'postgres', 'pg_isready', '-U', 'cloudbox'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/accepting connections/)
    expect(fs.readFileSync(path.join(sb.deployPath, 'exec-marker'), 'utf8')).toBe('ran\n')
  })
})

describe('sandbox: app health fault and reset', () => {
  it('healthy-only-with-secret: 503 while JWT_SECRET differs', async () => {
    const secret = envValue(pristineEnv.toString(), 'JWT_SECRET')!
    await sb.setAppHealthyOnlyWithSecret('some-other-secret-that-is-long-enough-000')
    expect((await sb.http('GET', '/api/health/ping')).status).toBe(503)
    expect((await runCommand('wget', ['-q', '--spider', sb.urls.health])).code).not.toBe(0)
    await sb.setAppHealthyOnlyWithSecret(secret)
    expect((await sb.http('GET', '/api/health/ping')).status).toBe(200)
    await sb.setAppHealthyOnlyWithSecret('some-other-secret-that-is-long-enough-000')
    await sb.setAppHealthyOnlyWithSecret(null)
    expect((await sb.http('GET', '/api/health/ping')).status).toBe(200)
  })

  it('reset() restores the exact .env bytes, removes rotation leftovers, clears faults and tokens', async () => {
    await login('user')
    const envPath = path.join(sb.deployPath, '.env')
    await editEnv((t) =>
      t.replace(/^JWT_SECRET=.*$/m, `JWT_SECRET=${crypto.randomBytes(64).toString('base64')}`)
    )
    fs.chmodSync(envPath, 0o644)
    fs.mkdirSync(path.join(sb.deployPath, '.rotation'), { mode: 0o700 })
    fs.writeFileSync(path.join(sb.deployPath, '.rotation', 'journal'), 'x\n')
    fs.copyFileSync(envPath, path.join(sb.deployPath, '.env.backup'))
    fs.copyFileSync(envPath, path.join(sb.deployPath, '.env.backup.20260101T000000Z'))
    expect((await sb.compose(['up', '-d'])).code).toBe(0)
    await sb.setComposeFaults([{ match: '^up', action: 'fail' }])
    await sb.setAppHealthyOnlyWithSecret('x'.repeat(40))

    const t0 = Date.now()
    await sb.reset()
    timings.resetAfterChange = Date.now() - t0

    expect(Buffer.compare(await sb.readEnvFile(), pristineEnv)).toBe(0)
    expect(fs.statSync(envPath).mode & 0o777).toBe(0o600)
    expect(fs.readdirSync(sb.deployPath).sort()).toEqual(
      ['.env', sb.composeFile, sb.composeFiles.dualSecret, sb.composeFiles.singleSecret].sort()
    )
    expect((await wrapper(['ps', '-q'])).code).toBe(0)
    expect((await sb.http('GET', '/api/health/ping')).status).toBe(200)
    expect((await sb.psql('SELECT count(*) FROM refresh_tokens')).trim()).toBe('0')
    const env = await sb.compose(['exec', '-T', 'backend', 'printenv', 'JWT_SECRET'])
    expect(env.stdout.trim()).toBe(envValue(pristineEnv.toString(), 'JWT_SECRET'))
    await login('admin')
    await login('user')

    const t1 = Date.now()
    await sb.reset()
    timings.resetNoop = Date.now() - t1
  })
})

describe('sandbox: teardown', () => {
  it('stop() leaves no container, process, mount or directory behind', async () => {
    const { workDir } = sb
    const ps = await runCommand('docker', ['ps', '-aq'], {
      env: { ...process.env, DOCKER_HOST: sb.dockerHost }
    })
    expect(ps.stdout.trim().split('\n')).toHaveLength(9)
    const t0 = Date.now()
    await sb.stop()
    timings.stop = Date.now() - t0
    expect(fs.existsSync(workDir)).toBe(false)
    expect(fs.readFileSync('/proc/mounts', 'utf8')).not.toContain(workDir)
    const leftovers = fs
      .readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(workDir)
        } catch {
          return false
        }
      })
    expect(leftovers).toEqual([])
    expect(await runCommand('ssh-keyscan', ['-p', String(sb.ssh.port), '127.0.0.1'])).toMatchObject(
      { stdout: '' }
    )
  })
})

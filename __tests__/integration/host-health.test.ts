// The host script's health check, sourced from the real script and run with
// curl and with wget against a loopback server that answers as told.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { renderAssignments } from '../../src/host/plan.js'
import { hostScript } from '../../src/host/sequence.js'

/** Answers per request number (1-based); the last answer repeats. */
let answers: number[] = [200]
let requests = 0
let paths: string[] = []
let server: http.Server
let base: string
let dir: string

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'health-'))
  writeFileSync(path.join(dir, 'rotate-host.sh'), hostScript())
  server = http.createServer((req, res) => {
    requests++
    paths.push(req.url ?? '')
    if (req.url === '/redirect') {
      res.writeHead(302, { location: '/ok' }).end()
      return
    }
    const code = answers[Math.min(requests, answers.length) - 1]
    res.writeHead(code).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve))
  rmSync(dir, { recursive: true, force: true })
})

function healthLoop(
  client: string,
  url: string,
  timeoutSeconds: number
): Promise<{ code: number | null; journal: string }> {
  requests = 0
  paths = []
  const journal = path.join(dir, `journal-${client}`)
  writeFileSync(journal, '')
  // The script sets its own JOURNAL when sourced: the test's values come after.
  const script =
    `ROTATE_HOST_SOURCED=1\n. ${path.join(dir, 'rotate-host.sh')}\n` +
    renderAssignments({
      JOURNAL: journal,
      HTTP_CLIENT: client,
      HEALTH_URL: url,
      HEALTH_TIMEOUT: timeoutSeconds,
      HEALTH_SETTLE: 1,
      HEALTH_INTERVAL: '0.1'
    }) +
    'health_loop health\n'
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', script], { stdio: 'ignore' })
    child.on('close', (code) => resolve({ code, journal: readFileSync(journal, 'utf8') }))
  })
}

describe.each(['curl', 'wget'])('health check with %s', (client) => {
  it('needs the app to stay healthy: one 2xx from a crash-looping app is not health', async () => {
    answers = [200, 500]
    const { code, journal } = await healthLoop(client, `${base}/crashloop`, 2)
    expect(code).toBe(1)
    expect(journal).toMatch(/healthy from try 1/)
    expect(journal).toMatch(/after a healthy answer: not settled/)
    expect(journal).toMatch(/gave up after/)
  })

  it('passes after a streak of 2xx answers, and journals where the streak began', async () => {
    answers = [503, 503, 200]
    const { code, journal } = await healthLoop(client, `${base}/ok`, 10)
    expect(code).toBe(0)
    expect(journal).toMatch(/healthy from try 3: HTTP 200/)
    expect(journal).toMatch(/stayed healthy for 1 s/)
  })

  it('follows no redirect and sends one request per probe', async () => {
    answers = [200]
    const { code, journal } = await healthLoop(client, `${base}/redirect`, 1)
    expect(code).toBe(1)
    expect(paths).not.toContain('/ok')
    const tries = Number(/gave up after (\d+) tries/.exec(journal)?.[1])
    expect(requests).toBe(tries)
  })
})

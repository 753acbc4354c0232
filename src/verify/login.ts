// "Verify admin can login" / "Verify regular user can login": one login
// attempt per account (CloudBox locks an account after 5 failures), then the
// account's probe URL with the new access token.
import type { Credentials } from '../config.js'
import type { LoginCheck } from '../outcome.js'
import type { HostSession } from '../host/ssh.js'
import { requestThroughTunnel } from './tunnel-http.js'

function errorCode(body: string): string {
  try {
    const parsed = JSON.parse(body) as {
      error?: { code?: string } | string
      code?: string
      message?: string
    }
    if (typeof parsed.error === 'string') return parsed.error
    return parsed.error?.code ?? parsed.code ?? parsed.message ?? ''
  } catch {
    return ''
  }
}

export async function checkLogin(
  session: HostSession,
  account: 'admin' | 'user',
  credentials: Credentials | undefined,
  loginUrl: string,
  checkUrl: string,
  mask: (value: string) => void
): Promise<LoginCheck> {
  if (!credentials) {
    return { account, status: 'skipped', reason: `skipped: no ${account}-credentials given` }
  }
  try {
    const login = await requestThroughTunnel(session, loginUrl, {
      method: 'POST',
      json: { email: credentials.email, password: credentials.password }
    })
    for (const cookie of [login.headers['set-cookie'] ?? []].flat()) {
      const value = /^[^=]+=([^;]*)/.exec(cookie)?.[1]
      if (value) mask(value)
    }
    if (login.status === 429) {
      return {
        account,
        status: 'failed',
        reason:
          'login rate-limited (HTTP 429): too many attempts for this account or address; try again in 15 minutes'
      }
    }
    if (login.status === 401) {
      return {
        account,
        status: 'failed',
        reason: `login refused (HTTP 401 ${errorCode(login.body) || 'INVALID_CREDENTIALS'}): check ${account}-credentials`
      }
    }
    if (login.status === 503) {
      return {
        account,
        status: 'failed',
        reason: `login refused (HTTP 503 ${errorCode(login.body)}): the app is in maintenance mode or unavailable`
      }
    }
    if (login.status !== 200) {
      return {
        account,
        status: 'failed',
        reason: `login answered HTTP ${login.status} ${errorCode(login.body)}`.trim()
      }
    }
    let parsed: { accessToken?: string; requires2FA?: boolean; tempToken?: string }
    try {
      parsed = JSON.parse(login.body)
    } catch {
      return { account, status: 'failed', reason: 'login answered 200 but not JSON' }
    }
    if (parsed.tempToken) mask(parsed.tempToken)
    if (parsed.requires2FA) {
      return {
        account,
        status: 'failed',
        reason:
          'the account has 2FA enabled: a login cannot be completed unattended; use an account without 2FA for this check'
      }
    }
    if (!parsed.accessToken)
      return { account, status: 'failed', reason: 'login answered 200 without an accessToken' }
    mask(parsed.accessToken)
    const probe = await requestThroughTunnel(session, checkUrl, { bearer: parsed.accessToken })
    if (probe.status === 200) return { account, status: 'verified' }
    return {
      account,
      status: 'failed',
      reason: `logged in, but GET ${checkUrl} with the new access token answered HTTP ${probe.status}${probe.status === 403 ? ' (is this account an admin?)' : ''}`
    }
  } catch (error) {
    return {
      account,
      status: 'failed',
      reason: `login check could not run: ${(error as Error).message}`
    }
  }
}

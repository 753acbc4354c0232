// GitHub REST API stand-in: a real HTTP server on 127.0.0.1 holding a real
// libsodium key pair per secret scope. It opens every sealed secret it gets
// and checks each request against GitHub's OpenAPI description. It logs
// nothing, least of all plaintext.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import sodium from 'libsodium-wrappers'
import {
  DOCS,
  error,
  HttpError,
  notFound,
  now,
  page,
  type Answer,
  type Handler,
  type Pager
} from './http.js'
import { IssueStore, type IssueRecord } from './issues.js'
import { OpenApi, type Route } from './openapi.js'
import { SecretScopes } from './secrets.js'

export type Permission = 'secrets' | 'environments' | 'variables' | 'issues'

export interface StandInOptions {
  owner: string
  repo: string
  environments: string[]
  /** token → permissions it holds */
  tokens: Record<string, Permission[]>
  /** Users an issue may be assigned to; default: the owner. */
  assignableUsers?: string[]
  /** Check every response of an implemented operation against its OpenAPI schema; see responseProblems. */
  validateResponses?: boolean
  /** Port on 127.0.0.1; default 0 (random). */
  port?: number
  /** Token → the `github-authentication-token-expiration` GitHub sends for it (fine-grained PATs, App tokens). */
  tokenExpiry?: Record<string, string>
}

export interface Fault {
  method?: string
  path: RegExp
  status: number
  /** How many matching requests fail; default: every one until clearFaults(). */
  times?: number
  body?: unknown
  headers?: Record<string, string>
  /** Carry the request out first, then answer with the fault: an answer lost after GitHub applied it. */
  afterApplying?: boolean
}

export interface StandIn {
  url: string
  secrets(scope: string): Map<string, string>
  secretWrites: Array<{ scope: string; name: string; at: number }>
  variables: Map<string, string>
  issues: IssueRecord[]
  labels: Set<string>
  requests: Array<{ method: string; path: string; status: number }>
  /** Responses of implemented operations that broke their OpenAPI schema (validateResponses). */
  responseProblems: string[]
  /** key_id of a scope ('repository' or 'environment:NAME'). */
  keyId(scope: string): string
  /** Base64 public key of a scope. */
  publicKey(scope: string): string
  /** A new environment (with its own key pair), as created in the repository's settings. */
  addEnvironment(name: string): void
  /** Every secret of every scope is deleted (not API writes). */
  clearSecrets(): void
  /** Organization secrets visible to the repository: name → visibility. */
  orgSecrets: Map<string, 'all' | 'private' | 'selected'>
  /** From now on the token is rejected with 401 (expired or revoked). */
  revokeToken(token: string): void
  /** Back to the start: no secret, no organization secret, only the initial environments, every token valid, no fault. */
  reset(): void
  inject(fault: Fault | { latencyMs: number }): void
  /** 403 with retry-after and GitHub's secondary rate limit message. */
  injectSecondaryRateLimit(fault: {
    path: RegExp
    method?: string
    retryAfter?: number
    times?: number
  }): void
  /** 500 Server Error. */
  injectServerError(fault: { path: RegExp; method?: string; times?: number }): void
  clearFaults(): void
  stop(): Promise<void>
}

interface Variable {
  value: string
  createdAt: string
  updatedAt: string
}

function permissionFor(route: Route): Permission | undefined {
  const t = route.template
  if (t.includes('/environments/{environment_name}/secrets')) return 'environments'
  if (t.includes('/actions/secrets') || t.endsWith('/actions/organization-secrets'))
    return 'secrets'
  if (t.includes('/actions/variables')) return 'variables'
  if (t.endsWith('/issues') || t.endsWith('/issues/{issue_number}')) return 'issues'
  if (t.endsWith('/environments/{environment_name}') || t.endsWith('/environments'))
    return 'environments'
  return undefined
}

export async function startGitHubStandIn(opts: StandInOptions): Promise<StandIn> {
  await sodium.ready
  const openapi = OpenApi.load()
  const scopes = new SecretScopes()
  scopes.add('repository')
  for (const env of opts.environments) scopes.add(`environment:${env}`)
  const environmentIds = new Map(opts.environments.map((e, i) => [e, 161088000 + i]))

  const variables = new Map<string, Variable>()
  const variableView = new Map<string, string>()
  const requests: StandIn['requests'] = []
  const responseProblems: string[] = []
  let faults: Array<Fault & { left: number }> = []
  const orgSecrets: StandIn['orgSecrets'] = new Map()
  const revoked = new Set<string>()
  let latencyMs = 0
  let url = ''
  const pager: Pager = (request, all, key) => page(url, request, all, key)
  const issueStore = new IssueStore(openapi, opts, () => url)

  const authorize = (req: IncomingMessage, route: Route): void => {
    const header = req.headers.authorization ?? ''
    const match = /^(?:Bearer|token)\s+(\S+)$/i.exec(header)
    const perms = match && !revoked.has(match[1]) ? opts.tokens[match[1]] : undefined
    if (perms === undefined) throw error(401, 'Bad credentials')
    if (
      route.params.owner?.toLowerCase() !== opts.owner.toLowerCase() ||
      route.params.repo?.toLowerCase() !== opts.repo.toLowerCase()
    ) {
      throw notFound()
    }
    const needed = permissionFor(route)
    if (needed !== undefined && !perms.includes(needed)) {
      const level = route.method === 'GET' ? 'read' : 'write'
      throw new HttpError(
        403,
        {
          message: 'Resource not accessible by personal access token',
          documentation_url: DOCS,
          status: '403'
        },
        { 'x-accepted-github-permissions': `${needed}=${level}` }
      )
    }
  }

  /** An environment as GitHub answers it (the documented example, filled in). */
  const environmentBody = (name: string, id: number): Record<string, unknown> =>
    Object.assign(
      openapi.example('GET', '/repos/{owner}/{repo}/environments/{environment_name}', 200),
      {
        id,
        name,
        url: `${url}/repos/${opts.owner}/${opts.repo}/environments/${encodeURIComponent(name)}`,
        html_url: `${url}/${opts.owner}/${opts.repo}/deployments/activity_log?environments_filter=${encodeURIComponent(name)}`
      }
    )

  const handlers: Record<string, Handler> = {
    ...scopes.handlers(pager),
    ...issueStore.handlers(pager),
    'GET /repos/{owner}/{repo}': () => {
      const repo = openapi.example('GET', '/repos/{owner}/{repo}', 200)
      const owner = repo.owner as Record<string, unknown>
      Object.assign(owner, { login: opts.owner, html_url: `${url}/${opts.owner}` })
      Object.assign(repo, {
        name: opts.repo,
        full_name: `${opts.owner}/${opts.repo}`,
        html_url: `${url}/${opts.owner}/${opts.repo}`,
        url: `${url}/repos/${opts.owner}/${opts.repo}`,
        private: true,
        visibility: 'private'
      })
      // Not a fork and not from a template (the documented example is both, and incomplete).
      delete repo.template_repository
      delete repo.parent
      delete repo.source
      repo.fork = false
      repo.language ??= 'TypeScript'
      return { status: 200, body: repo }
    },
    'GET /repos/{owner}/{repo}/environments/{environment_name}': (route) => {
      const name = route.params.environment_name
      const id = environmentIds.get(name)
      if (id === undefined) throw notFound()
      return { status: 200, body: environmentBody(name, id) }
    },
    'GET /repos/{owner}/{repo}/environments': (_route, _body, request) => {
      const all = [...environmentIds].map(([name, id]) => environmentBody(name, id))
      return pager(request, all, 'environments')
    },
    'GET /repos/{owner}/{repo}/actions/organization-secrets': (_route, _body, request) => {
      const t = '2025-01-10T10:00:00Z'
      const all = [...orgSecrets].map(([name, visibility]) => ({
        name,
        created_at: t,
        updated_at: t,
        visibility
      }))
      return pager(request, all, 'secrets')
    },
    'GET /repos/{owner}/{repo}/actions/variables/{name}': (route) => {
      const name = route.params.name.toUpperCase()
      const v = variables.get(name)
      if (v === undefined) throw notFound()
      return {
        status: 200,
        body: { name, value: v.value, created_at: v.createdAt, updated_at: v.updatedAt }
      }
    },
    'POST /repos/{owner}/{repo}/actions/variables': (_route, body) => {
      const name = String(body.name).toUpperCase()
      if (variables.has(name)) throw error(409, 'Already exists - Variable already exists')
      const t = now()
      variables.set(name, { value: String(body.value), createdAt: t, updatedAt: t })
      variableView.set(name, String(body.value))
      return { status: 201, body: {} }
    },
    'PATCH /repos/{owner}/{repo}/actions/variables/{name}': (route, body) => {
      const name = route.params.name.toUpperCase()
      const v = variables.get(name)
      if (v === undefined) throw notFound()
      const newName = body.name === undefined ? name : String(body.name).toUpperCase()
      const value = body.value === undefined ? v.value : String(body.value)
      variables.delete(name)
      variableView.delete(name)
      variables.set(newName, { value, createdAt: v.createdAt, updatedAt: now() })
      variableView.set(newName, value)
      return { status: 204 }
    }
  }

  const readBody = async (req: IncomingMessage): Promise<string> => {
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of req) {
      size += (chunk as Buffer).length
      if (size > 1024 * 1024) throw error(413, 'Request body too large')
      chunks.push(chunk as Buffer)
    }
    return Buffer.concat(chunks).toString('utf8')
  }

  const handle = async (req: IncomingMessage): Promise<Answer & { route?: Route }> => {
    const method = (req.method ?? 'GET').toUpperCase()
    const pathname = new URL(req.url ?? '/', 'http://stand-in').pathname
    const raw = await readBody(req)
    if (latencyMs > 0) await new Promise((r) => setTimeout(r, latencyMs))
    const fault = faults.find(
      (f) =>
        f.left > 0 &&
        f.path.test(pathname) &&
        (f.method === undefined || f.method.toUpperCase() === method)
    )
    if (fault !== undefined) {
      fault.left--
      if (fault.afterApplying) {
        const route = openapi.match(method, pathname)
        if (route !== undefined) await dispatch(req, route, raw).catch(() => undefined)
      }
      return {
        status: fault.status,
        body: fault.body ?? {
          message: fault.status >= 500 ? 'Server Error' : 'Injected fault',
          documentation_url: DOCS
        },
        headers: fault.headers
      }
    }
    const route = openapi.match(method, pathname)
    if (route === undefined) throw notFound()
    try {
      return await dispatch(req, route, raw)
    } catch (e) {
      if (e instanceof HttpError) e.route = route
      throw e
    }
  }

  const dispatch = async (
    req: IncomingMessage,
    route: Route,
    raw: string
  ): Promise<Answer & { route?: Route }> => {
    authorize(req, route)
    const handler = handlers[`${route.method} ${route.template}`]
    if (handler === undefined) {
      throw error(
        501,
        `${route.method} ${route.template} is a GitHub API operation the stand-in does not implement`
      )
    }
    let body: Record<string, unknown> | undefined
    if (raw.trim() !== '') {
      try {
        body = JSON.parse(raw) as Record<string, unknown>
      } catch {
        throw error(400, 'Problems parsing JSON')
      }
    }
    const problems = openapi.validateRequest(route, body)
    if (problems.length > 0) throw error(422, `Invalid request.\n\n${problems.join('\n')}`)
    return { ...handler(route, body ?? {}, new URL(req.url ?? '/', 'http://stand-in')), route }
  }

  const expiryHeader = (req: IncomingMessage): Record<string, string> => {
    const token = /^(?:Bearer|token)\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1]
    const expiry = token === undefined ? undefined : opts.tokenExpiry?.[token]
    return expiry === undefined ? {} : { 'github-authentication-token-expiration': expiry }
  }

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void handle(req)
      .catch((e: unknown) => {
        if (e instanceof HttpError) {
          return {
            status: e.status,
            body: e.body as unknown,
            headers: e.headers,
            route: e.route,
            error: true
          }
        }
        return { status: 500, body: { message: 'Stand-in error', documentation_url: DOCS } }
      })
      .then((answer) => {
        const pathname = new URL(req.url ?? '/', 'http://stand-in').pathname
        requests.push({
          method: (req.method ?? 'GET').toUpperCase(),
          path: pathname,
          status: answer.status
        })
        const withRoute = answer as Answer & { route?: Route; error?: boolean }
        // Error answers are checked where GitHub documents that status for the operation.
        if (
          opts.validateResponses &&
          withRoute.route &&
          (!withRoute.error ||
            String(answer.status) in
              (withRoute.route.operation.responses as Record<string, unknown>))
        ) {
          for (const p of openapi.validateResponse(withRoute.route, answer.status, answer.body)) {
            responseProblems.push(
              `${withRoute.route.method} ${withRoute.route.template} ${answer.status}: ${p}`
            )
          }
        }
        const text = answer.body === undefined ? '' : JSON.stringify(answer.body)
        res.writeHead(answer.status, {
          ...(text === '' ? {} : { 'content-type': 'application/json; charset=utf-8' }),
          'x-github-api-version-selected': '2022-11-28',
          'x-ratelimit-limit': '5000',
          'x-ratelimit-remaining': '4999',
          'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 3600),
          ...expiryHeader(req),
          ...(answer.headers ?? {})
        })
        res.end(text)
      })
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve())
  })
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  return {
    url,
    secrets: (label) => scopes.view(label),
    secretWrites: scopes.writes,
    variables: variableView,
    issues: issueStore.issues,
    labels: issueStore.labels,
    requests,
    responseProblems,
    keyId: (label) => scopes.named(label).keyId,
    addEnvironment(name) {
      if (environmentIds.has(name)) return
      scopes.add(`environment:${name}`)
      environmentIds.set(name, 161088000 + environmentIds.size)
    },
    clearSecrets() {
      scopes.clearAll()
    },
    orgSecrets,
    revokeToken(token) {
      revoked.add(token)
    },
    reset() {
      for (const label of scopes.labels()) {
        const env = label.replace(/^environment:/, '')
        if (label !== 'repository' && !opts.environments.includes(env)) {
          scopes.remove(label)
          environmentIds.delete(env)
        }
      }
      scopes.clearAll()
      orgSecrets.clear()
      revoked.clear()
      faults = []
      latencyMs = 0
    },
    publicKey: (label) => scopes.publicKey(label),
    inject(fault) {
      if ('latencyMs' in fault) latencyMs = fault.latencyMs
      else faults.push({ ...fault, left: fault.times ?? Infinity })
    },
    injectSecondaryRateLimit({ path, method, retryAfter = 1, times = 1 }) {
      faults.push({
        path,
        method,
        status: 403,
        left: times,
        headers: { 'retry-after': String(retryAfter), 'x-ratelimit-remaining': '4990' },
        body: {
          message:
            'You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID 0000:1111:2222:3333:44444444.',
          documentation_url:
            'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits',
          status: '403'
        }
      })
    },
    injectServerError({ path, method, times = 1 }) {
      faults.push({ path, method, status: 500, left: times, body: { message: 'Server Error' } })
    },
    clearFaults() {
      faults = []
      latencyMs = 0
    },
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.close((e) => (e ? reject(e) : resolve()))
        server.closeAllConnections()
      })
  }
}

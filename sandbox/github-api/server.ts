// GitHub REST API stand-in: a real HTTP server on 127.0.0.1 holding a real
// libsodium key pair per secret scope. It opens every sealed secret it gets
// and checks each request against GitHub's OpenAPI description. It logs
// nothing, least of all plaintext.

import { randomInt } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import sodium from 'libsodium-wrappers'
import { OpenApi, type Route } from './openapi.js'

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
  issues: Array<{
    number: number
    title: string
    body: string
    labels: string[]
    assignees: string[]
    /** How many times PATCH changed it. */
    updates?: number
  }>
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

interface Scope {
  label: string
  keyId: string
  publicKey: Uint8Array
  privateKey: Uint8Array
  secrets: Map<string, { value: string; createdAt: string; updatedAt: string }>
}

interface Variable {
  value: string
  createdAt: string
  updatedAt: string
}

const DOCS = 'https://docs.github.com/rest'

class HttpError extends Error {
  route?: Route
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {}
  ) {
    super(String(body.message))
  }
}

function error(status: number, message: string, extra: Record<string, unknown> = {}): HttpError {
  return new HttpError(status, {
    message,
    documentation_url: DOCS,
    status: String(status),
    ...extra
  })
}

const notFound = (): HttpError => error(404, 'Not Found')

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

const now = (): string => new Date().toISOString().replace(/\.\d+Z$/, 'Z')

export async function startGitHubStandIn(opts: StandInOptions): Promise<StandIn> {
  await sodium.ready
  const openapi = OpenApi.load()
  const scopes = new Map<string, Scope>()
  const makeScope = (label: string): void => {
    const pair = sodium.crypto_box_keypair()
    let keyId: string
    do keyId = String(randomInt(1e9, 2 ** 47)) + String(randomInt(1e5, 1e6))
    while ([...scopes.values()].some((s) => s.keyId === keyId))
    scopes.set(label, {
      label,
      keyId,
      publicKey: pair.publicKey,
      privateKey: pair.privateKey,
      secrets: new Map()
    })
  }
  makeScope('repository')
  for (const env of opts.environments) makeScope(`environment:${env}`)
  const environmentIds = new Map(opts.environments.map((e, i) => [e, 161088000 + i]))
  const assignable = new Set((opts.assignableUsers ?? [opts.owner]).map((u) => u.toLowerCase()))

  const variables = new Map<string, Variable>()
  const variableView = new Map<string, string>()
  const secretWrites: StandIn['secretWrites'] = []
  const issues: StandIn['issues'] = []
  const labels = new Set<string>()
  const requests: StandIn['requests'] = []
  const responseProblems: string[] = []
  let faults: Array<Fault & { left: number }> = []
  const orgSecrets: StandIn['orgSecrets'] = new Map()
  const revoked = new Set<string>()
  let latencyMs = 0
  let url = ''

  const scopeOf = (route: Route): Scope => {
    const env = route.params.environment_name
    const scope = scopes.get(env === undefined ? 'repository' : `environment:${env}`)
    if (scope === undefined) throw notFound()
    return scope
  }

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

  type Answer = { status: number; body?: unknown; headers?: Record<string, string> }
  const handlers: Record<
    string,
    (route: Route, body: Record<string, unknown>, request: URL) => Answer
  > = {
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
      const env = openapi.example(
        'GET',
        '/repos/{owner}/{repo}/environments/{environment_name}',
        200
      )
      Object.assign(env, {
        id,
        name,
        url: `${url}/repos/${opts.owner}/${opts.repo}/environments/${encodeURIComponent(name)}`,
        html_url: `${url}/${opts.owner}/${opts.repo}/deployments/activity_log?environments_filter=${encodeURIComponent(name)}`
      })
      return { status: 200, body: env }
    },
    'GET /repos/{owner}/{repo}/actions/secrets/public-key': (route) => publicKeyOf(scopeOf(route)),
    'GET /repos/{owner}/{repo}/environments/{environment_name}/secrets/public-key': (route) =>
      publicKeyOf(scopeOf(route)),
    'PUT /repos/{owner}/{repo}/actions/secrets/{secret_name}': (route, body) =>
      putSecret(route, body),
    'PUT /repos/{owner}/{repo}/environments/{environment_name}/secrets/{secret_name}': (
      route,
      body
    ) => putSecret(route, body),
    'GET /repos/{owner}/{repo}/actions/secrets/{secret_name}': (route) => getSecret(route),
    'GET /repos/{owner}/{repo}/environments/{environment_name}/secrets/{secret_name}': (route) =>
      getSecret(route),
    'DELETE /repos/{owner}/{repo}/actions/secrets/{secret_name}': (route) => deleteSecret(route),
    'DELETE /repos/{owner}/{repo}/environments/{environment_name}/secrets/{secret_name}': (route) =>
      deleteSecret(route),
    'GET /repos/{owner}/{repo}/environments': (_route, _body, request) => {
      const all = [...environmentIds].map(([name, id]) => {
        const env = openapi.example(
          'GET',
          '/repos/{owner}/{repo}/environments/{environment_name}',
          200
        )
        return Object.assign(env, {
          id,
          name,
          url: `${url}/repos/${opts.owner}/${opts.repo}/environments/${encodeURIComponent(name)}`,
          html_url: `${url}/${opts.owner}/${opts.repo}/deployments/activity_log?environments_filter=${encodeURIComponent(name)}`
        })
      })
      return page(request, all, 'environments')
    },
    'GET /repos/{owner}/{repo}/actions/secrets': (route, _body, request) =>
      secretList(route, request),
    'GET /repos/{owner}/{repo}/environments/{environment_name}/secrets': (route, _body, request) =>
      secretList(route, request),
    'GET /repos/{owner}/{repo}/actions/organization-secrets': (_route, _body, request) => {
      const t = '2025-01-10T10:00:00Z'
      const all = [...orgSecrets].map(([name, visibility]) => ({
        name,
        created_at: t,
        updated_at: t,
        visibility
      }))
      return page(request, all, 'secrets')
    },
    'GET /repos/{owner}/{repo}/issues': (_route, _body, request) => {
      const state = request.searchParams.get('state') ?? 'open'
      const all = issues
        .filter(() => state === 'all' || state === 'open')
        .slice()
        .reverse()
        .map((record) => issueBody(record))
      return page(request, all)
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
    },
    'POST /repos/{owner}/{repo}/issues': (_route, body) => {
      const assignees = [
        ...((body.assignees as string[] | undefined) ?? []),
        ...(typeof body.assignee === 'string' ? [body.assignee] : [])
      ]
      const invalid = assignees.filter((a) => !assignable.has(a.toLowerCase()))
      if (invalid.length > 0) {
        throw error(422, 'Validation Failed', {
          errors: invalid.map((value) => ({
            value,
            resource: 'Issue',
            field: 'assignees',
            code: 'invalid'
          }))
        })
      }
      const labelNames = ((body.labels as Array<string | { name?: string }> | undefined) ?? []).map(
        (l) => (typeof l === 'string' ? l : (l.name ?? ''))
      )
      for (const l of labelNames) labels.add(l) // GitHub creates unknown labels silently
      const number = issues.length + 1
      const record = {
        number,
        title: String(body.title),
        body: String(body.body ?? ''),
        labels: labelNames,
        assignees
      }
      issues.push(record)
      return { status: 201, body: issueBody(record), headers: { location: issueApiUrl(number) } }
    },
    'PATCH /repos/{owner}/{repo}/issues/{issue_number}': (route, body) => {
      const record = issues.find((i) => String(i.number) === route.params.issue_number)
      if (record === undefined) throw notFound()
      if (typeof body.title === 'string') record.title = body.title
      if (typeof body.body === 'string') record.body = body.body
      record.updates = (record.updates ?? 0) + 1
      return { status: 200, body: issueBody(record) }
    }
  }

  const issueApiUrl = (n: number): string => `${url}/repos/${opts.owner}/${opts.repo}/issues/${n}`
  const issueBody = (record: StandIn['issues'][number]): unknown => {
    const issue = openapi.example('POST', '/repos/{owner}/{repo}/issues', 201)
    const user = issue.user as Record<string, unknown>
    const person = (login: string, id: number): Record<string, unknown> => ({
      ...user,
      login,
      id,
      html_url: `${url}/${login}`
    })
    const t = now()
    Object.assign(issue, {
      id: 1000 + record.number,
      number: record.number,
      title: record.title,
      body: record.body,
      state: 'open',
      url: issueApiUrl(record.number),
      repository_url: `${url}/repos/${opts.owner}/${opts.repo}`,
      html_url: `${url}/${opts.owner}/${opts.repo}/issues/${record.number}`,
      labels: record.labels.map((name, i) => ({
        id: 208045946 + i,
        node_id: 'MDU6TGFiZWwyMDgwNDU5NDY=',
        url: `${url}/repos/${opts.owner}/${opts.repo}/labels/${encodeURIComponent(name)}`,
        name,
        description: null,
        color: 'ededed',
        default: false
      })),
      assignee: record.assignees.length > 0 ? person(record.assignees[0], 2) : null,
      assignees: record.assignees.map((login, i) => person(login, 2 + i)),
      user: person(opts.owner, 1),
      milestone: null,
      pull_request: undefined,
      closed_at: null,
      closed_by: null,
      comments: 0,
      created_at: t,
      updated_at: t
    })
    return JSON.parse(JSON.stringify(issue))
  }

  /** One page the way GitHub pages: per_page (≤ 100, default 30), page, and a Link header. */
  const page = (request: URL, all: unknown[], key?: string): Answer => {
    const query = request.searchParams
    const perPage = Number(query.get('per_page') ?? '30')
    const number = Number(query.get('page') ?? '1')
    if (!Number.isInteger(perPage) || perPage < 1 || perPage > 100) {
      throw error(422, 'Invalid request.\n\nper_page must be an integer from 1 to 100.')
    }
    if (!Number.isInteger(number) || number < 1)
      throw error(422, 'Invalid request.\n\npage must be a positive integer.')
    const items = all.slice((number - 1) * perPage, number * perPage)
    const last = Math.max(1, Math.ceil(all.length / perPage))
    const link = (n: number, rel: string): string => {
      const target = new URL(`${url}${request.pathname}`)
      target.searchParams.set('per_page', String(perPage))
      target.searchParams.set('page', String(n))
      return `<${target.toString()}>; rel="${rel}"`
    }
    const links = [
      ...(number < last ? [link(number + 1, 'next'), link(last, 'last')] : []),
      ...(number > 1 ? [link(1, 'first'), link(number - 1, 'prev')] : [])
    ]
    return {
      status: 200,
      body: key === undefined ? items : { total_count: all.length, [key]: items },
      headers: links.length > 0 ? { link: links.join(', ') } : {}
    }
  }

  const secretList = (route: Route, request: URL): Answer => {
    const scope = scopeOf(route)
    const all = [...scope.secrets].map(([name, s]) => ({
      name,
      created_at: s.createdAt,
      updated_at: s.updatedAt
    }))
    return page(request, all, 'secrets')
  }

  const publicKeyOf = (scope: Scope): Answer => ({
    status: 200,
    body: {
      key_id: scope.keyId,
      key: sodium.to_base64(scope.publicKey, sodium.base64_variants.ORIGINAL)
    }
  })

  const putSecret = (route: Route, body: Record<string, unknown>): Answer => {
    const scope = scopeOf(route)
    const name = route.params.secret_name.toUpperCase()
    if (!/^[A-Z_][A-Z0-9_]*$/.test(name) || name.startsWith('GITHUB_')) {
      throw error(
        422,
        'Invalid request.\n\nSecret names can only contain alphanumeric characters ([a-z], [A-Z], [0-9]) or underscores (_), must not start with a number or GITHUB_.'
      )
    }
    if (body.key_id !== scope.keyId) {
      throw error(
        422,
        `Invalid request.\n\nkey_id does not match the current public key of the ${scope.label} scope.`
      )
    }
    let value: string
    try {
      const opened = sodium.crypto_box_seal_open(
        sodium.from_base64(String(body.encrypted_value), sodium.base64_variants.ORIGINAL),
        scope.publicKey,
        scope.privateKey
      )
      value = new TextDecoder('utf-8', { fatal: true }).decode(opened)
    } catch {
      throw error(
        422,
        `Invalid request.\n\nencrypted_value could not be decrypted with the ${scope.label} scope's key.`
      )
    }
    const existing = scope.secrets.get(name)
    const t = now()
    scope.secrets.set(name, { value, createdAt: existing?.createdAt ?? t, updatedAt: t })
    secretWrites.push({ scope: scope.label, name, at: Date.now() })
    return existing ? { status: 204 } : { status: 201, body: {} }
  }

  const getSecret = (route: Route): Answer => {
    const scope = scopeOf(route)
    const name = route.params.secret_name.toUpperCase()
    const s = scope.secrets.get(name)
    if (s === undefined) throw notFound()
    return { status: 200, body: { name, created_at: s.createdAt, updated_at: s.updatedAt } }
  }

  const deleteSecret = (route: Route): Answer => {
    const scope = scopeOf(route)
    if (!scope.secrets.delete(route.params.secret_name.toUpperCase())) throw notFound()
    return { status: 204 }
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

  const scopeNamed = (label: string): Scope => {
    const scope = scopes.get(label)
    if (scope === undefined) throw new Error(`the stand-in has no scope ${label}`)
    return scope
  }

  return {
    url,
    secrets: (label) => {
      const scope = scopeNamed(label)
      const view = new Map([...scope.secrets].map(([n, s]) => [n, s.value]))
      // set(), delete() and clear() write through, so a test can seed the values a team would hold
      // (not an API write: secretWrites is left alone).
      Object.defineProperty(view, 'set', {
        enumerable: false,
        value: (name: string, value: string) => {
          const existing = scope.secrets.get(name)
          const t = now()
          scope.secrets.set(name, { value, createdAt: existing?.createdAt ?? t, updatedAt: t })
          return Map.prototype.set.call(view, name, value)
        }
      })
      Object.defineProperty(view, 'delete', {
        enumerable: false,
        value: (name: string) => scope.secrets.delete(name) && Map.prototype.delete.call(view, name)
      })
      Object.defineProperty(view, 'clear', {
        enumerable: false,
        value: () => {
          scope.secrets.clear()
          Map.prototype.clear.call(view)
        }
      })
      return view
    },
    secretWrites,
    variables: variableView,
    issues,
    labels,
    requests,
    responseProblems,
    keyId: (label) => scopeNamed(label).keyId,
    addEnvironment(name) {
      if (environmentIds.has(name)) return
      makeScope(`environment:${name}`)
      environmentIds.set(name, 161088000 + environmentIds.size)
    },
    clearSecrets() {
      for (const scope of scopes.values()) scope.secrets.clear()
    },
    orgSecrets,
    revokeToken(token) {
      revoked.add(token)
    },
    reset() {
      for (const label of [...scopes.keys()]) {
        const env = label.replace(/^environment:/, '')
        if (label !== 'repository' && !opts.environments.includes(env)) {
          scopes.delete(label)
          environmentIds.delete(env)
        }
      }
      for (const scope of scopes.values()) scope.secrets.clear()
      orgSecrets.clear()
      revoked.clear()
      faults = []
      latencyMs = 0
    },
    publicKey: (label) =>
      sodium.to_base64(scopeNamed(label).publicKey, sodium.base64_variants.ORIGINAL),
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

// The stand-in's HTTP vocabulary: GitHub's error bodies, its answer shape, and
// pagination the way GitHub pages (per_page ≤ 100, page, a Link header).

import type { Route } from './openapi.js'

export const DOCS = 'https://docs.github.com/rest'

export type Answer = { status: number; body?: unknown; headers?: Record<string, string> }

/** One implemented operation: the matched route, the parsed JSON body, the request URL. */
export type Handler = (route: Route, body: Record<string, unknown>, request: URL) => Answer

/** Pages a list the way GitHub does (see page()). */
export type Pager = (request: URL, all: unknown[], key?: string) => Answer

export class HttpError extends Error {
  route?: Route
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {}
  ) {
    super(String(body.message))
  }
}

export function error(
  status: number,
  message: string,
  extra: Record<string, unknown> = {}
): HttpError {
  return new HttpError(status, {
    message,
    documentation_url: DOCS,
    status: String(status),
    ...extra
  })
}

export const notFound = (): HttpError => error(404, 'Not Found')

/** GitHub's timestamps: seconds, Z. */
export const now = (): string => new Date().toISOString().replace(/\.\d+Z$/, 'Z')

/** One page of `all`: per_page (≤ 100, default 30), page, and a Link header on `baseUrl`. */
export function page(baseUrl: string, request: URL, all: unknown[], key?: string): Answer {
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
    const target = new URL(`${baseUrl}${request.pathname}`)
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

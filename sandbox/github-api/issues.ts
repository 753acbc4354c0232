// The stand-in's issues: created, listed newest first and patched, with
// GitHub's validation of assignees and its silent creation of unknown labels.
import { error, notFound, now, type Handler, type Pager } from './http.js'
import type { OpenApi } from './openapi.js'

export interface IssueRecord {
  number: number
  title: string
  body: string
  labels: string[]
  assignees: string[]
  /** How many times PATCH changed it. */
  updates?: number
}

export class IssueStore {
  readonly issues: IssueRecord[] = []
  readonly labels = new Set<string>()
  private readonly assignable: Set<string>

  constructor(
    private readonly openapi: OpenApi,
    private readonly repo: { owner: string; repo: string; assignableUsers?: string[] },
    /** The server's base URL (known once it listens). */
    private readonly baseUrl: () => string
  ) {
    this.assignable = new Set((repo.assignableUsers ?? [repo.owner]).map((u) => u.toLowerCase()))
  }

  handlers(page: Pager): Record<string, Handler> {
    return {
      'GET /repos/{owner}/{repo}/issues': (_route, _body, request) => {
        const state = request.searchParams.get('state') ?? 'open'
        const all = this.issues
          .filter(() => state === 'all' || state === 'open')
          .slice()
          .reverse()
          .map((record) => this.render(record))
        return page(request, all)
      },
      'POST /repos/{owner}/{repo}/issues': (_route, body) => {
        const assignees = [
          ...((body.assignees as string[] | undefined) ?? []),
          ...(typeof body.assignee === 'string' ? [body.assignee] : [])
        ]
        const invalid = assignees.filter((a) => !this.assignable.has(a.toLowerCase()))
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
        const labelNames = (
          (body.labels as Array<string | { name?: string }> | undefined) ?? []
        ).map((l) => (typeof l === 'string' ? l : (l.name ?? '')))
        for (const l of labelNames) this.labels.add(l) // GitHub creates unknown labels silently
        const number = this.issues.length + 1
        const record = {
          number,
          title: String(body.title),
          body: String(body.body ?? ''),
          labels: labelNames,
          assignees
        }
        this.issues.push(record)
        return {
          status: 201,
          body: this.render(record),
          headers: { location: this.apiUrl(number) }
        }
      },
      'PATCH /repos/{owner}/{repo}/issues/{issue_number}': (route, body) => {
        const record = this.issues.find((i) => String(i.number) === route.params.issue_number)
        if (record === undefined) throw notFound()
        if (typeof body.title === 'string') record.title = body.title
        if (typeof body.body === 'string') record.body = body.body
        record.updates = (record.updates ?? 0) + 1
        return { status: 200, body: this.render(record) }
      }
    }
  }

  private apiUrl(n: number): string {
    return `${this.baseUrl()}/repos/${this.repo.owner}/${this.repo.repo}/issues/${n}`
  }

  /** The issue as GitHub answers it (the documented example, filled in). */
  private render(record: IssueRecord): unknown {
    const url = this.baseUrl()
    const { owner, repo } = this.repo
    const issue = this.openapi.example('POST', '/repos/{owner}/{repo}/issues', 201)
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
      url: this.apiUrl(record.number),
      repository_url: `${url}/repos/${owner}/${repo}`,
      html_url: `${url}/${owner}/${repo}/issues/${record.number}`,
      labels: record.labels.map((name, i) => ({
        id: 208045946 + i,
        node_id: 'MDU6TGFiZWwyMDgwNDU5NDY=',
        url: `${url}/repos/${owner}/${repo}/labels/${encodeURIComponent(name)}`,
        name,
        description: null,
        color: 'ededed',
        default: false
      })),
      assignee: record.assignees.length > 0 ? person(record.assignees[0], 2) : null,
      assignees: record.assignees.map((login, i) => person(login, 2 + i)),
      user: person(owner, 1),
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
}

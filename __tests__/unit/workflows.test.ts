// The workflow files and action.yml, parsed with `yaml`: the rotation
// workflow's triggers, concurrency, environment and least permissions; the
// monthly access check; every `uses: ./` step passes only real inputs.
// (actionlint checks the rest of the workflow syntax in CI.)
import { describe, expect, it } from '@jest/globals'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const workflowDir = join(root, '.github', 'workflows')

type Dict = Record<string, unknown>

interface Step {
  id?: string
  name?: string
  uses?: string
  run?: string
  if?: string
  with?: Dict
  env?: Dict
}
interface Job {
  'runs-on'?: unknown
  environment?: unknown
  permissions?: unknown
  'timeout-minutes'?: number
  steps?: Step[]
}
interface Workflow {
  name?: string
  on: Dict
  concurrency?: { group?: string; 'cancel-in-progress'?: boolean } | string
  permissions?: unknown
  jobs: Record<string, Job>
}

const action = parse(readFileSync(join(root, 'action.yml'), 'utf8')) as {
  name?: string
  description?: string
  runs?: { using?: string; main?: string; post?: string; 'post-if'?: string }
  inputs: Record<string, { description?: string; required?: boolean; default?: unknown }>
  outputs: Record<string, { description?: string }>
}

const files = readdirSync(workflowDir).filter((f) => /\.ya?ml$/.test(f))
const workflows = new Map<string, Workflow>(
  files.map((f) => [f, parse(readFileSync(join(workflowDir, f), 'utf8')) as Workflow])
)

function workflow(file: string): Workflow {
  const found = workflows.get(file)
  if (!found) throw new Error(`.github/workflows/${file} is missing`)
  return found
}

function localActionSteps(wf: Workflow): Step[] {
  return Object.values(wf.jobs).flatMap((job) =>
    (job.steps ?? []).filter((s) => s.uses === './' || s.uses === '.')
  )
}

const PERMISSION_LEVELS = new Set(['read', 'write', 'none'])

/** Permissions of a workflow and all its jobs, as [scope, level] pairs. */
function permissionPairs(wf: Workflow): [string, string][] {
  const blocks = [wf.permissions, ...Object.values(wf.jobs).map((j) => j.permissions)]
  const pairs: [string, string][] = []
  for (const block of blocks) {
    if (block === undefined) continue
    if (typeof block === 'string') pairs.push(['*', block])
    else
      for (const [scope, level] of Object.entries(block as Dict)) pairs.push([scope, String(level)])
  }
  return pairs
}

/** Whether a five-field cron expression fires once a year (fixed minute, hour, day, month). */
function yearly(cron: string): boolean {
  const [minute, hour, day, month, weekday] = cron.trim().split(/\s+/)
  return [minute, hour, day, month].every((f) => /^\d+$/.test(f)) && weekday === '*'
}

/** Whether it fires once a month (fixed minute, hour and day, every month). */
function monthly(cron: string): boolean {
  const [minute, hour, day, month, weekday] = cron.trim().split(/\s+/)
  return [minute, hour, day].every((f) => /^\d+$/.test(f)) && month === '*' && weekday === '*'
}

describe('action.yml', () => {
  it('names and describes the action', () => {
    expect(typeof action.name).toBe('string')
    expect(action.name?.trim()).not.toBe('')
    expect(action.description?.trim().length ?? 0).toBeGreaterThan(20)
  })

  it('runs dist/index.js on node24, and dist/post.js as a post step that always runs', () => {
    expect(action.runs).toEqual({
      using: 'node24',
      main: 'dist/index.js',
      post: 'dist/post.js',
      'post-if': 'always()'
    })
  })

  it.each(Object.keys(action.inputs))('input %s has a description and a sane default', (name) => {
    const input = action.inputs[name]
    expect(name).toMatch(/^[a-z][a-z0-9-]*$/)
    expect(input.description?.trim().length ?? 0).toBeGreaterThan(0)
    if (input.required === true) expect(input.default).toBeUndefined()
    else expect(typeof input.default).toBe('string')
  })

  it.each(Object.keys(action.outputs))('output %s has a description', (name) => {
    expect(name).toMatch(/^[a-z][a-z0-9-]*$/)
    expect(action.outputs[name].description?.trim().length ?? 0).toBeGreaterThan(0)
  })
})

describe('every workflow', () => {
  it.each(files)('%s declares least permissions (no write-all, no secrets or admin scope)', (f) => {
    const wf = workflow(f)
    expect(wf.permissions).toBeDefined()
    for (const [scope, level] of permissionPairs(wf)) {
      expect(scope).not.toBe('*') // read-all / write-all
      expect(PERMISSION_LEVELS.has(level)).toBe(true)
      expect(['secrets', 'administration', 'actions']).not.toContain(level === 'write' ? scope : '')
    }
  })

  it.each(files)('%s passes only inputs of action.yml to uses: ./', (f) => {
    for (const step of localActionSteps(workflow(f))) {
      const keys = Object.keys(step.with ?? {})
      expect(keys.filter((key) => !(key in action.inputs))).toEqual([])
      const required = Object.entries(action.inputs)
        .filter(([, input]) => input.required === true)
        .map(([name]) => name)
      expect(required.filter((name) => !keys.includes(name))).toEqual([])
    }
  })

  it.each(files)('%s never hands GITHUB_TOKEN to secrets-token', (f) => {
    for (const step of localActionSteps(workflow(f))) {
      const token = String(step.with?.['secrets-token'] ?? '')
      expect(token).not.toMatch(/github\.token|secrets\.GITHUB_TOKEN/i)
    }
  })

  it.each(files)('%s checks out the repository before uses: ./', (f) => {
    for (const job of Object.values(workflow(f).jobs)) {
      const steps = job.steps ?? []
      const local = steps.findIndex((s) => s.uses === './')
      if (local < 0) continue
      const checkout = steps.findIndex((s) => /^actions\/checkout@/.test(s.uses ?? ''))
      expect(checkout).toBeGreaterThanOrEqual(0)
      expect(checkout).toBeLessThan(local)
    }
  })
})

describe('rotation workflow (rotate-jwt-secrets.yml)', () => {
  const wf = workflow('rotate-jwt-secrets.yml')
  const dispatch = wf.on.workflow_dispatch as { inputs: Record<string, Dict> }
  const [job] = Object.values(wf.jobs)
  const [rotate] = localActionSteps(wf)

  it('can be dispatched with reason, mode, dry-run and recover', () => {
    expect(Object.keys(dispatch.inputs).sort()).toEqual(['dry-run', 'mode', 'reason', 'recover'])
    expect(dispatch.inputs.reason).toMatchObject({ type: 'choice' })
    expect([...(dispatch.inputs.reason.options as string[])].sort()).toEqual([
      'incident',
      'personnel',
      'routine'
    ])
    expect(dispatch.inputs.mode).toMatchObject({ type: 'choice', default: 'immediate' })
    expect(dispatch.inputs.mode.options).toEqual(['immediate', 'graceful', 'retire-previous'])
    expect(dispatch.inputs['dry-run']).toMatchObject({ type: 'boolean', default: false })
    expect(dispatch.inputs.recover).toMatchObject({ type: 'boolean', default: false })
  })

  it('dispatch choices are values the action accepts', () => {
    const modes = action.inputs.mode.description ?? ''
    for (const mode of dispatch.inputs.mode.options as string[]) expect(modes).toContain(mode)
  })

  it('runs once a year on a schedule', () => {
    const schedule = wf.on.schedule as { cron: string }[]
    expect(schedule).toHaveLength(1)
    expect(yearly(schedule[0].cron)).toBe(true)
  })

  it('shares the production-deploy concurrency group and never cancels a rotation', () => {
    expect(wf.concurrency).toEqual({ group: 'production-deploy', 'cancel-in-progress': false })
    for (const j of Object.values(wf.jobs)) expect(j).not.toHaveProperty('concurrency')
  })

  it('runs in the production environment', () => {
    const env = job.environment
    expect(typeof env === 'string' ? env : (env as Dict | undefined)?.name).toBe('production')
  })

  it('asks GITHUB_TOKEN for contents: read and issues: write, nothing more', () => {
    expect(wf.permissions).toEqual({ contents: 'read', issues: 'write' })
    expect(job.permissions).toBeUndefined()
  })

  it('wires the token, key, pinned host key and dispatch inputs into the action', () => {
    expect(rotate).toBeDefined()
    const w = rotate.with ?? {}
    expect(w['secrets-token']).toBe('${{ secrets.ROTATION_TOKEN }}')
    expect(w['ssh-private-key']).toBe('${{ secrets.PROD_SSH_KEY }}')
    expect(w['ssh-known-hosts']).toBe('${{ vars.PROD_SSH_KNOWN_HOSTS }}')
    expect(w).not.toHaveProperty('ssh-insecure-skip-host-key-check')
    for (const name of ['reason', 'mode', 'dry-run', 'recover']) {
      expect(String(w[name])).toContain(`inputs.${name}`)
    }
    // Credentials come from secrets, never literals.
    for (const name of ['admin-credentials', 'user-credentials', 'ssh-passphrase']) {
      if (w[name] !== undefined) expect(String(w[name])).toMatch(/^\$\{\{ secrets\.[A-Z_]+ \}\}$/)
    }
  })

  it('falls back to a routine immediate rotation on the schedule (no inputs there)', () => {
    const w = rotate.with ?? {}
    expect(String(w.reason)).toContain("'routine'")
    expect(String(w.mode)).toContain("'immediate'")
  })

  it('has a timeout', () => {
    expect(job['timeout-minutes']).toBeGreaterThan(0)
  })

  it('guards the scheduled run with min-age-days, a whole number the action accepts', () => {
    const w = rotate.with ?? {}
    expect(action.inputs).toHaveProperty('min-age-days')
    expect(String(w['min-age-days'])).toMatch(/^\d+$/)
    expect(Number(w['min-age-days'])).toBeGreaterThan(0)
  })
})

describe('access check workflow (access-check.yml)', () => {
  const wf = workflow('access-check.yml')
  const [check] = localActionSteps(wf)

  it('runs monthly and on demand', () => {
    const schedule = wf.on.schedule as { cron: string }[]
    expect(schedule).toHaveLength(1)
    expect(monthly(schedule[0].cron)).toBe(true)
    expect(wf.on).toHaveProperty('workflow_dispatch')
  })

  it('is a dry run with the same credentials as the rotation', () => {
    const rotation = localActionSteps(workflow('rotate-jwt-secrets.yml'))[0].with ?? {}
    const w = check.with ?? {}
    expect(String(w['dry-run'])).toBe('true')
    expect(w.recover).toBeUndefined()
    for (const name of [
      'secrets-token',
      'environments',
      'ssh-host',
      'ssh-port',
      'ssh-user',
      'ssh-private-key',
      'ssh-known-hosts',
      'deploy-path'
    ]) {
      expect(w[name]).toEqual(rotation[name])
    }
  })

  it('stays out of the production-deploy group', () => {
    const group = typeof wf.concurrency === 'string' ? wf.concurrency : wf.concurrency?.group
    expect(group).toBeDefined()
    expect(group).not.toBe('production-deploy')
  })

  it('opens an issue only when it fails', () => {
    const steps = Object.values(wf.jobs).flatMap((j) => j.steps ?? [])
    const issueSteps = steps.filter((s) => /gh issue create/.test(s.run ?? ''))
    expect(issueSteps.length).toBeGreaterThan(0)
    for (const step of issueSteps) expect(step.if).toBe('failure()')
    expect(wf.permissions).toEqual({ contents: 'read', issues: 'write' })
  })
})

describe('release workflow (release.yml)', () => {
  const wf = workflow('release.yml')
  const jobs = wf.jobs as Record<string, Job & { uses?: string; needs?: string[] | string }>
  const ci = workflow('ci.yml')
  const runs = (job: Job): string =>
    (job.steps ?? []).map((s) => `${s.run ?? ''}\n${JSON.stringify(s.env ?? {})}`).join('\n')

  it('runs only on pushed vX.Y.Z tags', () => {
    expect(Object.keys(wf.on)).toEqual(['push'])
    const push = wf.on.push as Dict
    expect(push).not.toHaveProperty('branches')
    const tags = push.tags as string[]
    expect(tags).toEqual(['v[0-9]+.[0-9]+.[0-9]+'])
  })

  it('runs the full CI (ci.yml, callable) on the tagged commit', () => {
    expect(ci.on).toHaveProperty('workflow_call')
    const calls = Object.values(jobs).filter((j) => j.uses === './.github/workflows/ci.yml')
    expect(calls).toHaveLength(1)
  })

  it('refuses a tag that differs from package.json, a stale dist/ and missing notes', () => {
    const check = Object.values(jobs).find((j) => /package\.json/.test(runs(j)))
    expect(check).toBeDefined()
    const text = runs(check as Job)
    expect(text).toMatch(/require\('\.\/package\.json'\)\.version/)
    expect(text).toMatch(/"\$TAG" != "v\$version"/)
    expect(text).toContain('npm run build')
    expect(text).toContain('git status --porcelain -- dist')
    expect(text).toContain('scripts/changelog.ts check')
  })

  it('creates the release only after CI and the checks, with notes from CHANGELOG.md', () => {
    const entry = Object.entries(jobs).find(([, j]) => /gh release create/.test(runs(j)))
    expect(entry).toBeDefined()
    const [, release] = entry as [string, (typeof jobs)[string]]
    const needs = [release.needs ?? []].flat()
    const others = Object.keys(jobs).filter((name) => jobs[name] !== release)
    expect(needs.sort()).toEqual(others.sort())
    const text = runs(release)
    expect(text).toContain('scripts/changelog.ts notes')
    expect(text).toContain('--notes-file')
    expect(text).toContain('--verify-tag')
  })

  it('moves the major tag, never the vX.Y.Z tag, and only to the newest release of that major', () => {
    const release = Object.values(jobs).find((j) => /gh release create/.test(runs(j))) as Job
    const text = runs(release)
    expect(text).toContain('major="${TAG%%.*}"')
    expect(text).toMatch(/--sort=-v:refname/)
    expect(text).toMatch(/git push --force origin "refs\/tags\/\$major"/)
    expect(text).not.toMatch(/git push --force origin "refs\/tags\/\$TAG"/)
  })

  it('gives contents: write to the release job only', () => {
    expect(wf.permissions).toEqual({ contents: 'read' })
    for (const [, j] of Object.entries(jobs)) {
      if (/gh release create/.test(runs(j))) expect(j.permissions).toEqual({ contents: 'write' })
      else expect(j.permissions).toBeUndefined()
    }
  })

  it('never cancels a release in progress', () => {
    expect(wf.concurrency).toEqual({ group: 'release', 'cancel-in-progress': false })
  })
})

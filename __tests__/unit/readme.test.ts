// README.md must agree with action.yml (every input and output, same defaults,
// nothing extra), its usage examples must only use real inputs, its
// Troubleshooting headings must still be messages the source produces, and its
// relative links must point at files that exist.
import { describe, expect, it } from '@jest/globals'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse, parseAllDocuments } from 'yaml'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const readme = readFileSync(join(root, 'README.md'), 'utf8')

interface ActionInput {
  description?: string
  required?: boolean
  default?: unknown
}
const action = parse(readFileSync(join(root, 'action.yml'), 'utf8')) as {
  inputs: Record<string, ActionInput>
  outputs: Record<string, { description?: string }>
}

interface Table {
  header: string[]
  rows: string[][]
}

/** Splits a table row on unescaped pipes; `\|` becomes `|`. */
function cells(line: string): string[] {
  const inner = line.trim().replace(/^\|/, '').replace(/\|$/, '')
  return inner.split(/(?<!\\)\|/).map((cell) => cell.trim().replace(/\\\|/g, '|'))
}

/** Every pipe table of a markdown text (outside code fences). */
function tables(markdown: string): Table[] {
  const found: Table[] = []
  let fenced = false
  let current: string[] = []
  const flush = (): void => {
    if (current.length >= 2 && /^\|?\s*:?-{3,}/.test(current[1].trim())) {
      found.push({ header: cells(current[0]), rows: current.slice(2).map(cells) })
    }
    current = []
  }
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) {
      flush()
      fenced = !fenced
      continue
    }
    if (!fenced && line.trim().startsWith('|')) current.push(line)
    else flush()
  }
  flush()
  return found
}

/** `name` → name; anything else → undefined. */
function codeSpan(cell: string): string | undefined {
  const match = /^`([^`]+)`$/.exec(cell)
  return match?.[1]
}

/** What the README's default cell must say for an input of action.yml. */
function expectedDefault(input: ActionInput): string {
  if (input.default === undefined) return input.required ? 'required' : 'empty'
  const value = String(input.default)
  return value === '' ? 'empty' : `\`${value}\``
}

function rowsOf(kind: 'Input' | 'Output'): Map<string, string[]> {
  const rows = new Map<string, string[]>()
  for (const table of tables(readme).filter((t) => t.header[0] === kind)) {
    for (const row of table.rows) {
      const name = codeSpan(row[0])
      if (name === undefined)
        throw new Error(`README ${kind} table row without a \`name\`: ${row[0]}`)
      if (rows.has(name)) throw new Error(`README lists the ${kind.toLowerCase()} ${name} twice`)
      rows.set(name, row)
    }
  }
  return rows
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry)
    return statSync(path).isDirectory() ? sourceFiles(path) : [path]
  })
}

/** Markdown section from a `## title` heading to the next `## ` heading. */
function section(title: string): string {
  const start = readme.indexOf(`\n## ${title}\n`)
  if (start < 0) throw new Error(`README has no "## ${title}" section`)
  const end = readme.indexOf('\n## ', start + 1)
  return readme.slice(start, end < 0 ? undefined : end)
}

describe('README inputs', () => {
  const rows = rowsOf('Input')

  it('has input tables', () => {
    expect(rows.size).toBeGreaterThan(0)
  })

  it.each(Object.keys(action.inputs))('lists %s with the default of action.yml', (name) => {
    const row = rows.get(name)
    expect(row).toBeDefined()
    expect(row?.[1]).toBe(expectedDefault(action.inputs[name]))
    expect(row?.[2]?.length ?? 0).toBeGreaterThan(0)
  })

  it('lists no input that action.yml lacks', () => {
    const extra = [...rows.keys()].filter((name) => !(name in action.inputs))
    expect(extra).toEqual([])
  })

  it('marks exactly the required inputs as required', () => {
    const readmeRequired = [...rows].filter(([, row]) => row[1] === 'required').map(([n]) => n)
    const actionRequired = Object.entries(action.inputs)
      .filter(([, input]) => input.required === true)
      .map(([name]) => name)
    expect(readmeRequired.sort()).toEqual(actionRequired.sort())
  })
})

describe('README outputs', () => {
  const rows = rowsOf('Output')

  it('lists every output of action.yml, and only those', () => {
    expect([...rows.keys()].sort()).toEqual(Object.keys(action.outputs).sort())
  })

  it('describes each output', () => {
    for (const row of rows.values()) expect(row[1]?.length ?? 0).toBeGreaterThan(0)
  })
})

describe('README examples', () => {
  const blocks = [...readme.matchAll(/```ya?ml\n([\s\S]*?)```/g)].map((m) => m[1])

  /** Every step object (uses + with) anywhere in a parsed YAML value. */
  function steps(value: unknown, out: { uses: string; with?: Record<string, unknown> }[] = []) {
    if (Array.isArray(value)) for (const item of value) steps(item, out)
    else if (value !== null && typeof value === 'object') {
      const record = value as Record<string, unknown>
      if (typeof record.uses === 'string') {
        out.push({ uses: record.uses, with: record.with as Record<string, unknown> | undefined })
      }
      for (const child of Object.values(record)) steps(child, out)
    }
    return out
  }

  it('parses every YAML block', () => {
    expect(blocks.length).toBeGreaterThan(0)
    for (const block of blocks) {
      for (const doc of parseAllDocuments(block)) expect(doc.errors).toEqual([])
    }
  })

  it('shows the published form uses: OWNER/rotate-jwt-secrets-action@v1', () => {
    expect(readme).toContain('uses: OWNER/rotate-jwt-secrets-action@v1')
  })

  it('passes only real inputs, and every required one, to the action', () => {
    const uses = blocks.flatMap((block) => steps(parse(block)))
    const ours = uses.filter((s) => /rotate-jwt-secrets-action@|^\.\/?$/.test(s.uses))
    expect(ours.length).toBeGreaterThan(0)
    const required = Object.entries(action.inputs)
      .filter(([, input]) => input.required === true)
      .map(([name]) => name)
    for (const step of ours) {
      const keys = Object.keys(step.with ?? {})
      expect(keys.filter((key) => !(key in action.inputs))).toEqual([])
      expect(required.filter((name) => !keys.includes(name))).toEqual([])
    }
  })

  it('gives exactly one command for the demo and one for the tests', () => {
    expect(readme).toContain('```sh\nnpm run demo\n```')
    expect(readme).toContain('```sh\nnpm ci && npm test\n```')
  })
})

describe('README troubleshooting', () => {
  const sources = sourceFiles(join(root, 'src')).map((path) => readFileSync(path, 'utf8'))
  const headings = [...section('Troubleshooting').matchAll(/^#### `(.+)`$/gm)].map((m) => m[1])

  it('has entries', () => {
    expect(headings.length).toBeGreaterThanOrEqual(20)
  })

  // "…" stands for the variable part of a message: every literal part must
  // occur in one source file. When this fails, a message in src/ changed:
  // update the README's Troubleshooting heading (and its advice).
  it.each(headings)('"%s" is still a message in src/', (heading) => {
    const parts = heading
      .split('…')
      .map((part) => part.trim())
      .filter((part) => part !== '')
    expect(sources.some((text) => parts.every((part) => text.includes(part)))).toBe(true)
  })

  it('covers the messages users meet most', () => {
    for (const message of [
      'host key mismatch',
      'stale rotation lock',
      'another rotation holds the lock',
      'an earlier rotation was interrupted',
      'has no non-empty ENCRYPTION_KEY',
      '= line',
      '"Secrets"',
      '"Environments"',
      '"Variables"',
      'does not exist in',
      'compose file',
      'no compose CLI found',
      'neither curl nor wget',
      'mode graceful needs the services to receive <KEY>_PREVIOUS',
      'login rate-limited (HTTP 429)',
      '2FA enabled'
    ]) {
      expect(headings.some((heading) => heading.includes(message))).toBe(true)
    }
  })
})

describe('README links', () => {
  // Written by others alongside this README; checked once they exist.
  const pending = new Set(['docs/DUAL-SECRET.md', 'docs/BENCHMARKS.md'])
  const links = [...readme.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)]
    .map((m) => m[1])
    .filter((target) => !/^[a-z]+:/.test(target))

  it.each([...new Set(links)])('%s exists', (target) => {
    if (pending.has(target) && !existsSync(join(root, target))) return
    expect(existsSync(join(root, target))).toBe(true)
  })

  it('links the security, benchmark, dual-secret and sandbox docs', () => {
    for (const target of [
      'docs/SECURITY.md',
      'docs/BENCHMARKS.md',
      'docs/DUAL-SECRET.md',
      'sandbox/README.md'
    ]) {
      expect(links).toContain(target)
    }
  })
})

import { describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import {
  canWriteAs,
  EnvEditError,
  envValue,
  parseEnv,
  removeEnvKeys,
  setEnvValues,
  setPreviousValues
} from '../../src/host/dotenv.js'

const FIXTURE = readFileSync(
  new URL('../fixtures/cloudbox.env.production.example', import.meta.url),
  'utf8'
)

/** Lines with their own endings, so byte-level comparisons per line are exact. */
function linesOf(text: string): string[] {
  return text.match(/[^\n]*\n|[^\n]+$/g) ?? []
}

const b64 = (bytes = 64): string => randomBytes(bytes).toString('base64')

describe('parseEnv on the real CloudBox sample', () => {
  const entries = parseEnv(FIXTURE)

  it('finds every assignment with its line number', () => {
    const assignmentLines = linesOf(FIXTURE)
      .map((l, i) => ({ l, n: i + 1 }))
      .filter(({ l }) => /^[A-Z0-9_]+=/.test(l))
    expect(entries.map((e) => e.line)).toEqual(assignmentLines.map(({ n }) => n))
    expect(entries.every((e) => e.quote === 'none' && !e.exported)).toBe(true)
  })

  it('reads values as compose does', () => {
    expect(envValue(FIXTURE, 'JWT_SECRET')).toBe('your-super-secret-jwt-key-minimum-32-characters')
    expect(envValue(FIXTURE, 'TRUST_PROXY')).toBe('loopback, linklocal, uniquelocal')
    expect(envValue(FIXTURE, 'SMTP_FROM')).toBe('CloudBox <noreply@example.com>')
    expect(envValue(FIXTURE, 'REGISTRY')).toBe('')
    expect(envValue(FIXTURE, 'GLITCHTIP_EMAIL_URL')).toBe('consolemail://')
    expect(envValue(FIXTURE, 'POSTGRES_USER')).toBe('cloudbox')
    expect(envValue(FIXTURE, 'NOPE')).toBeUndefined()
  })

  it('rewrites exactly the two JWT lines', () => {
    const secret = b64()
    const refresh = b64()
    const out = setEnvValues(FIXTURE, { JWT_SECRET: secret, JWT_REFRESH_SECRET: refresh })
    const before = linesOf(FIXTURE)
    const after = linesOf(out)
    expect(after).toHaveLength(before.length)
    const changed = after.map((l, i) => (l === before[i] ? -1 : i)).filter((i) => i >= 0)
    expect(changed.map((i) => after[i])).toEqual([
      `JWT_SECRET=${secret}\n`,
      `JWT_REFRESH_SECRET=${refresh}\n`
    ])
    expect(envValue(out, 'JWT_SECRET')).toBe(secret)
    expect(envValue(out, 'JWT_REFRESH_SECRET')).toBe(refresh)
    expect(envValue(out, 'ENCRYPTION_KEY')).toBe(envValue(FIXTURE, 'ENCRYPTION_KEY'))
    // and back
    expect(
      setEnvValues(out, {
        JWT_SECRET: 'your-super-secret-jwt-key-minimum-32-characters',
        JWT_REFRESH_SECRET: 'your-super-secret-refresh-key-minimum-32-characters'
      })
    ).toBe(FIXTURE)
  })

  it('writes JWT_SECRET_PREVIOUS right after JWT_SECRET and removes it again', () => {
    const out = setPreviousValues(FIXTURE, { JWT_SECRET: 'old+/=value' })
    const lines = linesOf(out)
    const at = lines.indexOf('JWT_SECRET=your-super-secret-jwt-key-minimum-32-characters\n')
    expect(lines[at + 1]).toBe('JWT_SECRET_PREVIOUS=old+/=value\n')
    expect(lines[at + 2]).toBe(
      'JWT_REFRESH_SECRET=your-super-secret-refresh-key-minimum-32-characters\n'
    )
    expect(removeEnvKeys(out, ['JWT_SECRET_PREVIOUS'])).toBe(FIXTURE)
  })
})

describe('parseEnv syntax', () => {
  it('handles export, spacing, quotes, escapes and inline comments', () => {
    const text = [
      'export A=1',
      '  B = two  ',
      "C='single # not a comment \\n $HOME'",
      'D="dq \\"x\\" \\\\ \\n \\$ \'y\'"',
      'E=value # comment',
      'F=value#not-comment',
      "G='x' # trailing comment",
      'H=',
      'I="multi',
      'line"',
      'J=a $HOME b',
      'K="$HOME"',
      'L="\\$HOME"',
      'export\tM=tab',
      'INHERITED',
      '# comment line',
      '   # indented comment',
      '',
      'N=\t# only a comment?'
    ].join('\n')
    const byKey = Object.fromEntries(parseEnv(text).map((e) => [e.key, e]))
    expect(byKey.A).toMatchObject({ value: '1', exported: true, quote: 'none', line: 1 })
    expect(byKey.B).toMatchObject({ value: 'two', exported: false, line: 2 })
    expect(byKey.C).toMatchObject({
      value: 'single # not a comment \\n $HOME',
      quote: 'single',
      interpolated: false
    })
    expect(byKey.D).toMatchObject({ value: 'dq "x" \\ \n $ \'y\'', quote: 'double' })
    expect(byKey.D.interpolated).toBe(false)
    expect(byKey.E.value).toBe('value')
    expect(byKey.F.value).toBe('value#not-comment')
    expect(byKey.G.value).toBe('x')
    expect(byKey.H.value).toBe('')
    expect(byKey.I).toMatchObject({ value: 'multi\nline', line: 9 })
    expect(byKey.J).toMatchObject({ value: 'a $HOME b', interpolated: true })
    expect(byKey.K.interpolated).toBe(true)
    expect(byKey.L).toMatchObject({ value: '$HOME', interpolated: false })
    expect(byKey.M).toMatchObject({ value: 'tab', exported: true })
    expect(byKey.INHERITED).toBeUndefined()
    expect(byKey.N.value).toBe('# only a comment?')
    expect(parseEnv(text).map((e) => e.key)).toEqual('ABCDEFGHIJKLMN'.split(''))
  })

  it('duplicates: the last one wins', () => {
    const text = 'A=1\nB=x\nA=2\n'
    expect(envValue(text, 'A')).toBe('2')
    expect(parseEnv(text).filter((e) => e.key === 'A')).toHaveLength(2)
  })

  it('BOM, CRLF and a missing final newline', () => {
    const text = '\uFEFFA=1\r\nB="two"\r\nC=3'
    expect(parseEnv(text).map((e) => [e.key, e.value, e.line])).toEqual([
      ['A', '1', 1],
      ['B', 'two', 2],
      ['C', '3', 3]
    ])
  })

  it('octal escapes as compose v2 reads them', () => {
    expect(envValue('A="\\0101\\0x\\c"', 'A')).toBe('A\\0x\\c')
  })

  it('refuses malformed lines naming the line, never the text', () => {
    const secret = 'hunter2-very-secret'
    const bad = `A=1\n${secret} oops\n`
    expect(() => parseEnv(bad)).toThrow(EnvEditError)
    expect(() => parseEnv(bad)).toThrow(/line 2/)
    try {
      parseEnv(bad)
    } catch (e) {
      expect((e as Error).message).not.toContain(secret)
    }
    expect(() => parseEnv(`A="${secret}\nB=2\n`)).toThrow(/line 1: unterminated quoted value for A/)
    expect(() => parseEnv(`A="x" ${secret}\n`)).toThrow(/line 1: unexpected text/)
    try {
      parseEnv(`A="x" ${secret}\n`)
    } catch (e) {
      expect((e as Error).message).not.toContain(secret)
    }
  })
})

describe('setEnvValues', () => {
  it('rewrites only the last duplicate and keeps every other byte', () => {
    const text =
      '\uFEFFexport JWT_SECRET = "first"  # one\r\nX=1\nexport JWT_SECRET = "second"  # two\r\n'
    const v = b64(32)
    const out = setEnvValues(text, { JWT_SECRET: v })
    expect(out).toBe(
      `\uFEFFexport JWT_SECRET = "first"  # one\r\nX=1\nexport JWT_SECRET = "${v}"  # two\r\n`
    )
  })

  it('keeps quoting style, inline comment and the missing final newline', () => {
    const v = 'ab+/cd=='
    expect(setEnvValues("K='old' # c", { K: v })).toBe(`K='${v}' # c`)
    expect(setEnvValues('K=old # c', { K: v })).toBe(`K=${v} # c`)
    expect(setEnvValues('K=old\t', { K: v })).toBe(`K=${v}\t`)
    expect(setEnvValues('K=', { K: v })).toBe(`K=${v}`)
    expect(setEnvValues('K=""\n', { K: v })).toBe(`K="${v}"\n`)
    // an empty unquoted value before an inline comment would read as the comment
    expect(setEnvValues('K=old # c', { K: '' })).toBe('K="" # c')
    expect(setEnvValues('K=old', { K: '' })).toBe('K=')
  })

  it('writes 88-character and 1368-character base64 values unquoted', () => {
    for (const bytes of [64, 1024]) {
      const v = b64(bytes)
      expect(v.length).toBe(bytes === 64 ? 88 : 1368)
      const out = setEnvValues('A=1\nJWT_SECRET=old\nB=2\n', { JWT_SECRET: v })
      expect(out).toBe(`A=1\nJWT_SECRET=${v}\nB=2\n`)
      expect(envValue(out, 'JWT_SECRET')).toBe(v)
    }
  })

  it('switches to double quotes when the line style cannot hold the value', () => {
    expect(setEnvValues('K=old', { K: 'a b' })).toBe('K="a b"')
    expect(setEnvValues('K=old', { K: 'a#b' })).toBe('K="a#b"')
    expect(setEnvValues('K=old', { K: 'a\\b"c' })).toBe('K="a\\\\b\\"c"')
    expect(setEnvValues("K='old'", { K: "it's" })).toBe('K="it\'s"')
    expect(setEnvValues('K=old', { K: 'l1\nl2\r' })).toBe('K="l1\\nl2\\r"')
    for (const v of ['a b', 'a#b', 'a\\b"c', "it's", 'l1\nl2\r', ' lead', 'trail ', '"q']) {
      expect(envValue(setEnvValues('K=old', { K: v }), 'K')).toBe(v)
    }
  })

  it('writes values holding $ in single quotes when possible, else escapes it as \\$', () => {
    expect(setEnvValues('K=old', { K: 'pa$word' })).toBe("K='pa$word'")
    expect(setEnvValues('K="old"', { K: 'pa$word' })).toBe("K='pa$word'")
    expect(setEnvValues('K=old', { K: "it's $5" })).toBe('K="it\'s \\$5"')
    expect(setEnvValues('K=old', { K: 'a${B}' })).toBe('K="a\\${B}"')
    for (const v of ['pa$word', "it's $5", 'a${B}', '$$']) {
      const out = setEnvValues('K=old', { K: v })
      expect(envValue(out, 'K')).toBe(v)
      expect(parseEnv(out)[0].interpolated).toBe(false)
    }
  })

  it('refuses values no style can hold, without echoing them', () => {
    expect(() => setEnvValues('K=old', { K: 'sec ret\\' })).toThrow(EnvEditError)
    try {
      setEnvValues('K=old', { K: 'sec ret\\' })
    } catch (e) {
      expect((e as Error).message).toContain('K')
      expect((e as Error).message).not.toContain('sec ret')
    }
    // unquoted is fine for a trailing backslash without other specials? no: backslash needs quotes
    expect(canWriteAs('abc\\', 'none')).toBe(false)
  })

  it('names a missing key and never the value', () => {
    const v = b64()
    expect(() => setEnvValues('A=1\n', { JWT_SECRET: v })).toThrow(
      new EnvEditError('JWT_SECRET is not set in .env')
    )
  })
})

describe('setPreviousValues / removeEnvKeys', () => {
  it('copies the line layout: export, spacing, quoting, CRLF', () => {
    const text = 'A=1\r\n  export JWT_SECRET = "cur"  # note\r\nB=2\r\n'
    const out = setPreviousValues(text, { JWT_SECRET: 'old+/=' })
    expect(out).toBe(
      'A=1\r\n  export JWT_SECRET = "cur"  # note\r\n  export JWT_SECRET_PREVIOUS = "old+/="\r\nB=2\r\n'
    )
    expect(removeEnvKeys(out, ['JWT_SECRET_PREVIOUS'])).toBe(text)
  })

  it('replaces an earlier _PREVIOUS instead of duplicating it', () => {
    const text = 'JWT_SECRET_PREVIOUS=stale\nA=1\nJWT_SECRET=cur\nJWT_SECRET_PREVIOUS=stale2\nB=2\n'
    const out = setPreviousValues(text, { JWT_SECRET: 'old' })
    expect(out).toBe('A=1\nJWT_SECRET=cur\nJWT_SECRET_PREVIOUS=old\nB=2\n')
  })

  it('after the effective (last) assignment, in a file without a final newline', () => {
    const text = 'JWT_SECRET=a\r\nJWT_SECRET=b'
    const out = setPreviousValues(text, { JWT_SECRET: 'old' })
    expect(out).toBe('JWT_SECRET=a\r\nJWT_SECRET=b\r\nJWT_SECRET_PREVIOUS=old')
    expect(removeEnvKeys(out, ['JWT_SECRET_PREVIOUS'])).toBe(text)
  })

  it('two keys at once', () => {
    const text = 'JWT_SECRET=a\nJWT_REFRESH_SECRET=b\n'
    const out = setPreviousValues(text, { JWT_SECRET: 'x', JWT_REFRESH_SECRET: 'y' })
    expect(out).toBe(
      'JWT_SECRET=a\nJWT_SECRET_PREVIOUS=x\nJWT_REFRESH_SECRET=b\nJWT_REFRESH_SECRET_PREVIOUS=y\n'
    )
    expect(removeEnvKeys(out, ['JWT_SECRET_PREVIOUS', 'JWT_REFRESH_SECRET_PREVIOUS'])).toBe(text)
  })

  it('missing key', () => {
    expect(() => setPreviousValues('A=1', { JWT_SECRET: 'x' })).toThrow(/JWT_SECRET is not set/)
  })

  it('removeEnvKeys drops multi-line values and nothing else', () => {
    const text = '# c\nA="x\ny"\nB=1\nA=2'
    expect(removeEnvKeys(text, ['A'])).toBe('# c\nB=1')
    expect(removeEnvKeys(text, ['Z'])).toBe(text)
  })
})

// ---------------------------------------------------------------------------
// Property tests

type Quote = 'none' | 'single' | 'double'
interface GenLine {
  kind: 'comment' | 'blank' | 'assign'
  text: string
  key?: string
  value?: string
  quote?: Quote
}

const KEYS = ['JWT_SECRET', 'JWT_REFRESH_SECRET', 'A', 'FOO_BAR', 'export_x']
const safeNone = fc.string({
  unit: fc.constantFrom(...'abcXYZ0189+/=._:-@,<>'.split('')),
  maxLength: 20
})
const safeSingle = fc.string({
  unit: fc.constantFrom(...'abXY09+/= #"._-'.split('')),
  maxLength: 20
})
const safeDouble = fc.string({
  unit: fc.constantFrom(...'abXY09+/= #\'"\\._-'.split('')),
  maxLength: 20
})

const assignLine = fc
  .record({
    indent: fc.constantFrom('', ' ', '\t'),
    exported: fc.boolean(),
    key: fc.constantFrom(...KEYS),
    before: fc.constantFrom('', ' '),
    after: fc.constantFrom('', ' '),
    quote: fc.constantFrom<Quote>('none', 'single', 'double'),
    none: safeNone,
    single: safeSingle,
    double: safeDouble.filter((s) => !s.endsWith('\\')),
    comment: fc.constantFrom('', ' # note', '  # a # b', '\t')
  })
  .map((r): GenLine => {
    const value = r[r.quote]
    const raw =
      r.quote === 'none'
        ? value
        : r.quote === 'single'
          ? `'${value}'`
          : `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`
    // An empty unquoted value followed by " # x" would read "# x": compose's rule.
    const comment = r.quote === 'none' && value === '' && r.comment !== '\t' ? '' : r.comment
    const text = `${r.indent}${r.exported ? 'export ' : ''}${r.key}${r.before}=${r.after}${raw}${comment}`
    return { kind: 'assign', text, key: r.key, value, quote: r.quote }
  })

const otherLine = fc.oneof(
  fc
    .string({ unit: fc.constantFrom(...'ab #=$\'"\\x'.split('')), maxLength: 15 })
    .map((s): GenLine => ({ kind: 'comment', text: `#${s}` })),
  fc.constantFrom<GenLine>(
    { kind: 'blank', text: '' },
    { kind: 'blank', text: '   ' },
    { kind: 'comment', text: '  # indented' }
  )
)

const envFile = fc
  .record({
    bom: fc.boolean(),
    lines: fc.array(
      fc.record({
        line: fc.oneof({ weight: 3, arbitrary: assignLine }, { weight: 1, arbitrary: otherLine }),
        ending: fc.constantFrom('\n', '\r\n')
      }),
      { minLength: 1, maxLength: 12 }
    ),
    finalNewline: fc.boolean(),
    key: fc.constantFrom('JWT_SECRET', 'JWT_REFRESH_SECRET', 'A')
  })
  .filter((f) => f.lines.some((l) => l.line.key === f.key))
  .map((f) => {
    const parts = f.lines.map((l, i) =>
      i === f.lines.length - 1 && !f.finalNewline ? l.line.text : l.line.text + l.ending
    )
    let target = -1
    f.lines.forEach((l, i) => {
      if (l.line.key === f.key) target = i
    })
    return {
      text: (f.bom ? '\uFEFF' : '') + parts.join(''),
      lines: f.lines.map((l) => l.line),
      key: f.key,
      target,
      oldValue: f.lines[target].line.value as string
    }
  })

const base64Value = fc
  .uint8Array({ minLength: 32, maxLength: 1024 })
  .map((b) => Buffer.from(b).toString('base64'))

describe('properties', () => {
  it('parseEnv reads every generated assignment, last wins', () => {
    fc.assert(
      fc.property(envFile, (f) => {
        const entries = parseEnv(f.text)
        const expected = f.lines.filter((l) => l.kind === 'assign')
        expect(entries.map((e) => [e.key, e.value, e.quote])).toEqual(
          expected.map((l) => [l.key, l.value, l.quote])
        )
        expect(envValue(f.text, f.key)).toBe(f.oldValue)
      }),
      { numRuns: 300 }
    )
  })

  it('setEnvValues: only the target line changes, the value reads back, and the old value restores the bytes', () => {
    fc.assert(
      fc.property(envFile, base64Value, (f, v) => {
        const out = setEnvValues(f.text, { [f.key]: v })
        const before = linesOf(f.text)
        const after = linesOf(out)
        expect(after).toHaveLength(before.length)
        after.forEach((line, i) => {
          if (i !== f.target) expect(line).toBe(before[i])
        })
        expect(out.startsWith('\uFEFF')).toBe(f.text.startsWith('\uFEFF'))
        expect(envValue(out, f.key)).toBe(v)
        // base64 keeps the line's style: no quotes added to unquoted lines
        const entry = parseEnv(out)
          .filter((e) => e.key === f.key)
          .pop()
        expect(entry?.quote).toBe(f.lines[f.target].quote)
        // other keys unchanged
        for (const k of KEYS.filter((k) => k !== f.key)) {
          expect(envValue(out, k)).toBe(envValue(f.text, k))
        }
        expect(setEnvValues(out, { [f.key]: f.oldValue })).toBe(f.text)
      }),
      { numRuns: 300 }
    )
  })

  it('setPreviousValues then removeEnvKeys restores the original', () => {
    fc.assert(
      fc.property(envFile, base64Value, (f, old) => {
        const out = setPreviousValues(f.text, { [f.key]: old })
        const prevKey = `${f.key}_PREVIOUS`
        expect(envValue(out, prevKey)).toBe(old)
        const entries = parseEnv(out)
        const cur = entries.filter((e) => e.key === f.key).pop()
        const prev = entries.filter((e) => e.key === prevKey)
        expect(prev).toHaveLength(1)
        expect(prev[0].line).toBe((cur?.line ?? 0) + 1)
        expect(prev[0].quote).toBe(cur?.quote)
        expect(prev[0].exported).toBe(cur?.exported)
        expect(removeEnvKeys(out, [prevKey])).toBe(f.text)
        // setting it twice still leaves one
        const twice = setPreviousValues(out, { [f.key]: old })
        expect(parseEnv(twice).filter((e) => e.key === prevKey)).toHaveLength(1)
        expect(twice).toBe(out)
      }),
      { numRuns: 200 }
    )
  })

  it('any value written reads back unchanged', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('K=old', "K='old'", 'K="old"', 'export K = old # c\r\n'),
        fc.string({ maxLength: 30 }).filter((s) => !s.endsWith('\\') && !s.includes('\0')),
        (line, v) => {
          const out = setEnvValues(line, { K: v })
          expect(envValue(out, 'K')).toBe(v)
          expect(parseEnv(out)[0].interpolated).toBe(false)
        }
      ),
      { numRuns: 500 }
    )
  })
})

// docker-compose 1.29.2 (the runbook's compose) reads .env with python-dotenv:
// check that it agrees with parseEnv on generated files and on written values.
const pythonDotenv = ((): boolean => {
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import dotenv'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()

const PY = `
import io, json, sys
from dotenv import dotenv_values
out = []
for text in json.load(sys.stdin):
    if text.startswith('\\ufeff'):
        text = text[1:]
    out.append(dotenv_values(stream=io.StringIO(text), interpolate=True))
json.dump(out, sys.stdout)
`

;(pythonDotenv ? describe : describe.skip)(
  'agreement with docker-compose 1.x (python-dotenv)',
  () => {
    it('reads generated files and written values alike', () => {
      const files = fc.sample(envFile, 150).map((f) => f.text)
      const written = [
        'a b',
        'a#b',
        ' lead',
        'a\\b"c',
        "it's",
        'l1\nl2\r',
        'pa$word',
        '$5 and #',
        b64(64)
      ].flatMap((v) => ['K=old', "K='old'", 'K="old"'].map((line) => setEnvValues(line, { K: v })))
      const texts = [FIXTURE, ...files, ...written]
      const result = JSON.parse(
        execFileSync('/usr/bin/python3', ['-c', PY], { input: JSON.stringify(texts) }).toString()
      ) as Record<string, string | null>[]
      texts.forEach((text, i) => {
        const ours: Record<string, string> = {}
        for (const e of parseEnv(text)) ours[e.key] = e.value
        expect(result[i]).toEqual(ours)
      })
    })
  }
)

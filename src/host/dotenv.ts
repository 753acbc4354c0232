// Lossless reading and editing of a compose `.env` file (pure, no I/O).
//
// Parsing follows compose v2's dotenv parser (compose-spec/compose-go
// `dotenv/parser.go`), which is also what docker-compose 1.x (python-dotenv)
// agrees with for every value this module writes:
//
// - optional `export ` prefix, `#` comment lines, blank lines, whitespace
//   around the key and `=`; the value starts after the first `=`;
// - unquoted values end at ` #` (an inline comment) and are trimmed;
// - single quotes are literal (no escapes, no interpolation);
// - double quotes process the escapes `\a \b \f \n \r \t \v \$ \" \\` and
//   `\0ooo` (octal), then `$` interpolation;
// - quoted values may span lines; a closing quote directly preceded by a
//   backslash does not close the value;
// - duplicate keys: the last assignment wins.
//
// Interpolation (`$VAR`, `${VAR}`, `$$`) is NOT performed: values are returned
// as written (after unquoting and unescaping), and `EnvEntry.interpolated`
// says whether compose would substitute something in it.
//
// Writing a value keeps the line's quoting style when the value can be written
// in it so that compose v2 *and* docker-compose 1.x (python-dotenv 0.21) read
// back exactly that value:
//
// - unquoted: no whitespace, `#`, quote, `$`, backslash or control character
//   (generated base64 secrets always qualify);
// - single quotes: no `'`, backslash, line break, or `${` (python-dotenv 0.21
//   interpolates `${…}` even inside single quotes);
// - double quotes: anything except a value ending in a backslash (compose-go
//   would read the escaped backslash before the closing quote as escaping the
//   quote). Escapes written: `\\`, `\"`, `\n`, `\r`, and `$` as `\$`.
//
// Otherwise the line switches to double quotes. One exception: a value holding
// a `$` goes in single quotes whenever it fits there, whatever the line's
// style, because that is the only literal-`$` form compose v2 and
// docker-compose 1.x read alike (in double quotes compose v2 needs `\$` or
// `$$`, which python-dotenv keeps verbatim; unquoted, both interpolate). A
// value no style can hold raises EnvEditError. Generated secrets (standard
// base64) never need any of this: they stay unquoted on unquoted lines.
//
// No error message ever contains a value or a line's text: only key names and
// line numbers.

export type EnvQuote = 'none' | 'single' | 'double'

export interface EnvEntry {
  key: string
  /** Value after unquoting and unescaping; `$` references are not expanded. */
  value: string
  /** 1-based line number of the assignment's first line. */
  line: number
  quote: EnvQuote
  exported: boolean
  /** True when compose would interpolate a `$` in this value (unquoted or double quotes). */
  interpolated: boolean
}

export class EnvEditError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'EnvEditError'
  }
}

const BOM = '\uFEFF'
/** The same BOM in a byte-per-character (latin1) text, as the action reads the host's .env. */
const BYTE_BOM = '\xEF\xBB\xBF'

interface Line {
  /** Offset of the line's first character in the body (text without BOM). */
  start: number
  /** Offset just after the line's content (before its line ending). */
  contentEnd: number
  /** Offset just after the line ending (start of the next line). */
  next: number
  ending: '' | '\n' | '\r\n'
}

interface Assignment extends EnvEntry {
  /** Index of the first and last line (0-based) the assignment covers. */
  firstLine: number
  lastLine: number
  /** Body offsets of the key name. */
  keyStart: number
  keyEnd: number
  /** Body offsets of the raw value (quotes included; unquoted: trimmed value). */
  valueStart: number
  valueEnd: number
}

interface Parsed {
  bom: string
  body: string
  lines: Line[]
  assignments: Assignment[]
}

function splitLines(body: string): Line[] {
  const lines: Line[] = []
  let start = 0
  while (start < body.length) {
    const nl = body.indexOf('\n', start)
    if (nl === -1) {
      lines.push({ start, contentEnd: body.length, next: body.length, ending: '' })
      break
    }
    const crlf = nl > start && body[nl - 1] === '\r'
    lines.push({
      start,
      contentEnd: crlf ? nl - 1 : nl,
      next: nl + 1,
      ending: crlf ? '\r\n' : '\n'
    })
    start = nl + 1
  }
  return lines
}

// compose-go's isSpace (no line breaks).
const SPACE = '[\\t\\v\\f\\r \\u0085\\u00A0]'
const ASSIGNMENT = new RegExp(
  `^(${SPACE}*(export${SPACE}+)?)([A-Za-z0-9_.\\-\\[\\]]+)${SPACE}*=${SPACE}*`
)
const INHERITED = new RegExp(`^${SPACE}*(?:export${SPACE}+)?[A-Za-z0-9_.\\-\\[\\]]+${SPACE}*$`)
const BLANK = new RegExp(`^${SPACE}*$`)
const COMMENT = new RegExp(`^${SPACE}*#`)
const TRAILING_SPACE = /[\s\u0085\u00A0]+$/

function decodeDouble(raw: string): string {
  return raw.replace(/\\([abcfnrtv$"\\]|0\d{0,3})/g, (match, c: string) => {
    switch (c) {
      case 'a':
        return '\x07'
      case 'b':
        return '\b'
      case 'f':
        return '\f'
      case 'n':
        return '\n'
      case 'r':
        return '\r'
      case 't':
        return '\t'
      case 'v':
        return '\v'
      case '$':
        return '$'
      case '"':
        return '"'
      case '\\':
        return '\\'
      default:
        // `\c` is no escape; `\0ooo` is an octal byte (exactly three octal digits).
        if (/^0[0-7]{3}$/.test(c) && parseInt(c.slice(1), 8) < 256) {
          return String.fromCharCode(parseInt(c.slice(1), 8))
        }
        return match
    }
  })
}

/** Does the raw text of a double-quoted value contain a `$` compose would interpolate? */
function doubleInterpolates(raw: string): boolean {
  return /\$/.test(raw.replace(/\\[\\$]/g, ''))
}

function parseText(text: string): Parsed {
  const bom = text.startsWith(BOM) ? BOM : text.startsWith(BYTE_BOM) ? BYTE_BOM : ''
  const body = text.slice(bom.length)
  const lines = splitLines(body)
  const assignments: Assignment[] = []
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]
    const content = body.slice(line.start, line.contentEnd)
    if (BLANK.test(content) || COMMENT.test(content)) continue
    const m = ASSIGNMENT.exec(content)
    if (m === null) {
      // A bare `KEY` takes the value from the environment: not an assignment.
      if (INHERITED.test(content)) continue
      throw new EnvEditError(`line ${i + 1}: not a KEY=value assignment, comment or blank line`)
    }
    const key = m[3]
    const keyStart = line.start + m[1].length
    const keyEnd = keyStart + key.length
    const valueStart = line.start + m[0].length
    const first = body[valueStart]
    const base = {
      key,
      line: i + 1,
      exported: m[2] !== undefined,
      firstLine: i,
      keyStart,
      keyEnd,
      valueStart
    }
    if (first === '"' || first === "'") {
      // Find the closing quote: the first one not directly preceded by a backslash.
      let close = -1
      for (let p = valueStart + 1; p < body.length; p++) {
        if (body[p] === first && body[p - 1] !== '\\') {
          close = p
          break
        }
      }
      if (close === -1) {
        throw new EnvEditError(`line ${i + 1}: unterminated quoted value for ${key}`)
      }
      let last = i
      while (lines[last].next <= close) last++
      const rest = body.slice(close + 1, lines[last].contentEnd)
      if (!BLANK.test(rest) && !new RegExp(`^${SPACE}*#`).test(rest)) {
        throw new EnvEditError(
          `line ${last + 1}: unexpected text after the closing quote of ${key}`
        )
      }
      const raw = body.slice(valueStart + 1, close)
      assignments.push({
        ...base,
        value: first === '"' ? decodeDouble(raw) : raw,
        quote: first === '"' ? 'double' : 'single',
        interpolated: first === '"' && doubleInterpolates(raw),
        lastLine: last,
        valueEnd: close + 1
      })
      i = last
      continue
    }
    let rawValue = body.slice(valueStart, line.contentEnd)
    const comment = rawValue.indexOf(' #')
    if (comment !== -1) rawValue = rawValue.slice(0, comment)
    rawValue = rawValue.replace(TRAILING_SPACE, '')
    assignments.push({
      ...base,
      value: rawValue,
      quote: 'none',
      interpolated: rawValue.includes('$'),
      lastLine: i,
      valueEnd: valueStart + rawValue.length
    })
  }
  return { bom, body, lines, assignments }
}

function publicEntry(a: Assignment): EnvEntry {
  return {
    key: a.key,
    value: a.value,
    line: a.line,
    quote: a.quote,
    exported: a.exported,
    interpolated: a.interpolated
  }
}

/** Every assignment in the file, in order (duplicates included). */
export function parseEnv(text: string): EnvEntry[] {
  return parseText(text).assignments.map(publicEntry)
}

/** The value compose uses for `key` (the last assignment wins), or undefined. */
export function envValue(text: string, key: string): string | undefined {
  const entries = parseEnv(text)
  for (let i = entries.length - 1; i >= 0; i--) {
    if (entries[i].key === key) return entries[i].value
  }
  return undefined
}

// ---------------------------------------------------------------------------
// Encoding

/** Can `value` be written in `quote` style so that compose reads back exactly `value`? */
export function canWriteAs(value: string, quote: EnvQuote): boolean {
  switch (quote) {
    case 'none':
      // eslint-disable-next-line no-control-regex
      return !/[\s\u0085\u00A0#'"$\\\x00-\x1f\x7f]/.test(value)
    case 'single':
      // eslint-disable-next-line no-control-regex
      return !/['\\\r\n\x00]/.test(value) && !value.includes('${')
    case 'double':
      return !value.endsWith('\\') && !value.includes('\x00')
  }
}

function encode(value: string, quote: EnvQuote): string {
  switch (quote) {
    case 'none':
      return value
    case 'single':
      return `'${value}'`
    case 'double':
      return `"${value.replace(/[\\"\n\r$]/g, (c) => {
        switch (c) {
          case '\n':
            return '\\n'
          case '\r':
            return '\\r'
          default:
            return `\\${c}`
        }
      })}"`
  }
}

/** Picks the style a value is written in: the line's own style when it can hold the value. */
function styleFor(
  key: string,
  value: string,
  preferred: EnvQuote,
  commentFollows = false
): EnvQuote {
  // A literal `$` reads alike in compose v2 and docker-compose 1.x only in single quotes.
  if (value.includes('$') && canWriteAs(value, 'single')) return 'single'
  // `K= # c` reads as "# c": an empty value before an inline comment needs quotes.
  const emptyBeforeComment = value === '' && commentFollows
  if (canWriteAs(value, preferred) && !(preferred === 'none' && emptyBeforeComment)) {
    return preferred
  }
  if (canWriteAs(value, 'double')) return 'double'
  if (canWriteAs(value, 'none') && !emptyBeforeComment) return 'none'
  throw new EnvEditError(
    `the new value of ${key} cannot be written to .env in a form compose reads back unchanged (it ends with a backslash or holds a NUL character)`
  )
}

function effective(parsed: Parsed, key: string): Assignment | undefined {
  for (let i = parsed.assignments.length - 1; i >= 0; i--) {
    if (parsed.assignments[i].key === key) return parsed.assignments[i]
  }
  return undefined
}

function assemble(parsed: Parsed, body: string): string {
  return parsed.bom + body
}

interface Splice {
  start: number
  end: number
  text: string
}

function applySplices(body: string, splices: Splice[]): string {
  const sorted = [...splices].sort((a, b) => b.start - a.start)
  let out = body
  for (const s of sorted) out = out.slice(0, s.start) + s.text + out.slice(s.end)
  return out
}

/**
 * Rewrites the value of the effective (last) assignment of each key, keeping
 * every other byte. Throws EnvEditError when a key has no assignment.
 */
export function setEnvValues(text: string, values: Record<string, string>): string {
  const parsed = parseText(text)
  const splices: Splice[] = []
  for (const [key, value] of Object.entries(values)) {
    const target = effective(parsed, key)
    if (target === undefined) throw new EnvEditError(`${key} is not set in .env`)
    const lastLine = parsed.lines[target.lastLine]
    const commentFollows = !BLANK.test(parsed.body.slice(target.valueEnd, lastLine.contentEnd))
    const style = styleFor(key, value, target.quote, commentFollows)
    splices.push({ start: target.valueStart, end: target.valueEnd, text: encode(value, style) })
  }
  return assemble(parsed, applySplices(parsed.body, splices))
}

/** Drops every assignment (all its lines) of the given keys; nothing else changes. */
export function removeEnvKeys(text: string, keys: string[]): string {
  const parsed = parseText(text)
  const drop = new Set(keys)
  const removed = new Set<number>()
  for (const a of parsed.assignments) {
    if (!drop.has(a.key)) continue
    for (let l = a.firstLine; l <= a.lastLine; l++) removed.add(l)
  }
  if (removed.size === 0) return text
  const kept = parsed.lines.filter((_, i) => !removed.has(i))
  let body = kept.map((l) => parsed.body.slice(l.start, l.next)).join('')
  // The file had no final line break: keep it that way when its last line went.
  const lastLine = parsed.lines[parsed.lines.length - 1]
  if (lastLine.ending === '' && removed.has(parsed.lines.length - 1) && kept.length > 0) {
    body = body.slice(0, body.length - kept[kept.length - 1].ending.length)
  }
  return assemble(parsed, body)
}

function dominantEnding(lines: Line[]): '\n' | '\r\n' {
  const first = lines.find((l) => l.ending !== '')
  return first?.ending === '\r\n' ? '\r\n' : '\n'
}

/**
 * For each `KEY: old`, writes `KEY_PREVIOUS=<old>` on the line right after the
 * effective `KEY` assignment, with that line's indentation, `export` prefix,
 * spacing around `=`, quoting style and line ending. Earlier `KEY_PREVIOUS`
 * assignments are removed, so the result holds exactly one.
 */
export function setPreviousValues(text: string, previous: Record<string, string>): string {
  let out = text
  for (const [key, old] of Object.entries(previous)) {
    const previousKey = `${key}_PREVIOUS`
    if (effective(parseText(out), key) === undefined) {
      throw new EnvEditError(`${key} is not set in .env`)
    }
    out = removeEnvKeys(out, [previousKey])
    const parsed = parseText(out)
    const target = effective(parsed, key) as Assignment
    const style = styleFor(previousKey, old, target.quote)
    const first = parsed.lines[target.firstLine]
    const last = parsed.lines[target.lastLine]
    const prefix =
      parsed.body.slice(first.start, target.keyStart) +
      previousKey +
      parsed.body.slice(target.keyEnd, target.valueStart)
    const newLine = prefix + encode(old, style)
    let insertion: Splice
    if (last.ending === '') {
      // KEY is on the last line, which has no line break: add one before the new line.
      insertion = { start: last.next, end: last.next, text: dominantEnding(parsed.lines) + newLine }
    } else {
      insertion = { start: last.next, end: last.next, text: newLine + last.ending }
    }
    out = assemble(parsed, applySplices(parsed.body, [insertion]))
  }
  return out
}

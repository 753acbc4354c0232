// Markdown building blocks shared by the issue body and the job summary.
// Pure. Every free-text value from the outcome goes through one of these, so
// nothing it holds can open a code span, raw HTML, a link or a table cell.

// eslint-disable-next-line no-control-regex -- stripping control characters is the point
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g

const INLINE_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '`': '&#96;',
  '\\': '\\\\',
  '|': '\\|',
  '[': '\\[',
  ']': '\\]'
}

/**
 * Free text as one line of inert markdown: safe in a paragraph, list item or
 * table cell (pipes escaped, backticks and HTML neutralised, no links).
 */
export function inline(text: string): string {
  return text
    .replace(CONTROL, '')
    .replace(/\s*(?:\r\n?|\n)\s*/g, ' ')
    .replace(/[&<>`\\|[\]]/g, (c) => INLINE_ESCAPES[c] ?? c)
    .trim()
}

/** A code span that cannot be broken out of; `|` escaped for table cells. */
export function code(text: string): string {
  const flat = text.replace(CONTROL, '').replace(/\r\n?|\n/g, ' ')
  const longest = Math.max(0, ...(flat.match(/`+/g) ?? []).map((run) => run.length))
  const fence = '`'.repeat(longest + 1)
  const pad = flat.startsWith('`') || flat.endsWith('`') ? ' ' : ''
  return `${fence}${pad}${flat.replace(/\|/g, '\\|')}${pad}${fence}`
}

/** A fenced code block whose fence is longer than any backtick run inside. */
export function fenced(lines: string[]): string {
  const body = lines.map((line) => line.replace(CONTROL, '').replace(/\r\n?|\n/g, ' '))
  const longest = Math.max(0, ...body.flatMap((l) => (l.match(/`+/g) ?? []).map((r) => r.length)))
  const fence = '`'.repeat(Math.max(3, longest + 1))
  return [`${fence}text`, ...body, fence].join('\n')
}

/** A markdown table; cells are already rendered (escape them with inline/code). */
export function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

/** A GitHub alert block (`> [!CAUTION]` …); lines are already rendered. */
export function alert(
  kind: 'NOTE' | 'TIP' | 'IMPORTANT' | 'WARNING' | 'CAUTION',
  lines: string[]
): string {
  return [`> [!${kind}]`, ...lines.map((l) => (l === '' ? '>' : `> ${l}`))].join('\n')
}

/** Free multi-line text as inert markdown lines (each line escaped on its own). */
export function paragraphLines(text: string): string[] {
  return text
    .split(/\r\n?|\n/)
    .map((l) => inline(l))
    .filter((l) => l !== '')
}

/** Seconds with one decimal, or undefined when unknown. */
export function seconds(value: number | undefined): string | undefined {
  if (value === undefined || !Number.isFinite(value) || value < 0) return undefined
  return (Math.round(value * 10) / 10).toFixed(1)
}

/** An http(s) URL as a markdown link; anything else as inert text. */
export function link(url: string, text = url): string {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return inline(url)
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return inline(url)
  const href = parsed.href.replace(/[()<>|\s`]/g, (c) => encodeURIComponent(c))
  return `[${inline(text)}](${href})`
}

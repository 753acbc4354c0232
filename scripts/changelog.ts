// CHANGELOG.md in Keep a Changelog style (https://keepachangelog.com/en/1.1.0/):
// `## [Unreleased]` on top, then `## [X.Y.Z] - YYYY-MM-DD` sections, newest
// first, and link references at the bottom.
//
//   tsx scripts/changelog.ts notes X.Y.Z          the section's body (release notes); fails when missing or empty
//   tsx scripts/changelog.ts release X.Y.Z DATE   moves Unreleased into a new X.Y.Z section (in place)
//   tsx scripts/changelog.ts check X.Y.Z          fails unless CHANGELOG.md has a non-empty X.Y.Z section
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export const VERSION = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$/

interface Section {
  heading: string
  /** 'Unreleased' or a version. */
  name: string
  start: number
  end: number
}

function sections(text: string): Section[] {
  const found: Section[] = []
  const re = /^## \[([^\]]+)\][^\n]*$/gm
  let match: RegExpExecArray | null
  while ((match = re.exec(text)) !== null) {
    found.push({ heading: match[0], name: match[1], start: match.index, end: text.length })
  }
  const refs = text.search(/^\[[^\]]+\]: /m)
  for (let i = 0; i < found.length; i++) {
    found[i].end = i + 1 < found.length ? found[i + 1].start : refs >= 0 ? refs : text.length
  }
  return found
}

function body(text: string, section: Section): string {
  return text.slice(section.start + section.heading.length, section.end).trim()
}

/** The release notes of `version`: its section's body. Throws when it is missing or empty. */
export function releaseNotes(text: string, version: string): string {
  const section = sections(text).find((s) => s.name === version)
  if (!section) throw new Error(`CHANGELOG.md has no "## [${version}]" section`)
  const notes = body(text, section)
  if (notes === '') throw new Error(`CHANGELOG.md's section ${version} is empty`)
  return notes + '\n'
}

/** Versions released so far, newest first. */
export function releasedVersions(text: string): string[] {
  return sections(text)
    .map((s) => s.name)
    .filter((name) => VERSION.test(name))
}

function compare(a: string, b: string): number {
  const pa = a.split('.').map(Number)
  const pb = b.split('.').map(Number)
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i] - pb[i]
  return 0
}

/**
 * Moves the Unreleased entries into a new `## [version] - date` section under
 * an empty Unreleased, and updates the link references when a repository URL
 * is known from them.
 */
export function cutRelease(text: string, version: string, date: string): string {
  if (!VERSION.test(version)) throw new Error(`"${version}" is not a version X.Y.Z`)
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) throw new Error(`"${date}" is not a date YYYY-MM-DD`)
  const all = sections(text)
  const unreleased = all.find((s) => s.name === 'Unreleased')
  if (!unreleased) throw new Error('CHANGELOG.md has no "## [Unreleased]" section')
  const released = releasedVersions(text)
  if (released.includes(version)) throw new Error(`CHANGELOG.md already has a ${version} section`)
  const latest = released[0]
  if (latest !== undefined && compare(version, latest) <= 0) {
    throw new Error(`${version} is not newer than the latest release ${latest}`)
  }
  const entries = body(text, unreleased)
  if (!/^- /m.test(entries)) {
    throw new Error('the Unreleased section lists no change: write the entries first')
  }
  let out =
    text.slice(0, unreleased.start) +
    `## [Unreleased]\n\n## [${version}] - ${date}\n\n${entries}\n\n` +
    text.slice(unreleased.end)
  // Link references: [Unreleased]: <repo>/compare/vX...HEAD
  const ref = /^\[Unreleased\]: (\S+)\/compare\/(\S+)\.\.\.HEAD$/m.exec(out)
  const repoUrl = ref?.[1] ?? /^\[Unreleased\]: (\S+?)\/commits\/\S+$/m.exec(out)?.[1]
  if (repoUrl) {
    const previous = ref?.[2]
    const versionRef = previous
      ? `[${version}]: ${repoUrl}/compare/${previous}...v${version}`
      : `[${version}]: ${repoUrl}/releases/tag/v${version}`
    out = out.replace(
      /^\[Unreleased\]: .*$/m,
      `[Unreleased]: ${repoUrl}/compare/v${version}...HEAD\n${versionRef}`
    )
  }
  return out.replace(/\n{3,}/g, '\n\n')
}

function main(argv: string[]): void {
  const [command, version, date] = argv
  const path = new URL('../CHANGELOG.md', import.meta.url)
  const text = readFileSync(path, 'utf8')
  switch (command) {
    case 'notes':
      process.stdout.write(releaseNotes(text, version))
      return
    case 'check':
      releaseNotes(text, version)
      return
    case 'release':
      writeFileSync(path, cutRelease(text, version, date))
      return
    default:
      throw new Error('usage: changelog.ts notes|check X.Y.Z | release X.Y.Z YYYY-MM-DD')
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    main(process.argv.slice(2))
  } catch (error) {
    process.stderr.write(`changelog: ${(error as Error).message}\n`)
    process.exit(1)
  }
}

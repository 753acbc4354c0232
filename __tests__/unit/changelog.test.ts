// CHANGELOG.md (Keep a Changelog) and scripts/changelog.ts, which the release
// script and the release workflow use.
import { describe, expect, it } from '@jest/globals'
import { readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cutRelease, releaseNotes, releasedVersions } from '../../scripts/changelog.js'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const changelog = readFileSync(join(root, 'CHANGELOG.md'), 'utf8')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }

const SAMPLE = `# Changelog

## [Unreleased]

### Added

- min-age-days

### Fixed

- a bug

## [1.0.0] - 2027-01-01

### Added

- everything

[Unreleased]: https://github.com/acme/rotate/compare/v1.0.0...HEAD
[1.0.0]: https://github.com/acme/rotate/releases/tag/v1.0.0
`

describe('CHANGELOG.md', () => {
  it('follows Keep a Changelog: a title, then Unreleased on top', () => {
    expect(changelog.startsWith('# Changelog\n')).toBe(true)
    expect(changelog).toContain('keepachangelog.com')
    const first = /^## \[([^\]]+)\]/m.exec(changelog)
    expect(first?.[1]).toBe('Unreleased')
  })

  it('has a dated section for every released version, newest first, none above package.json', () => {
    const versions = releasedVersions(changelog)
    for (const v of versions)
      expect(changelog).toMatch(new RegExp(`^## \\[${v}\\] - \\d{4}-\\d{2}-\\d{2}$`, 'm'))
    const sorted = [...versions].sort((a, b) => b.localeCompare(a, undefined, { numeric: true }))
    expect(versions).toEqual(sorted)
    if (versions[0]) expect(versions[0]).toBe(pkg.version)
  })

  it('uses only the Keep a Changelog change types', () => {
    const types = [...changelog.matchAll(/^### (.+)$/gm)].map((m) => m[1])
    expect(types.length).toBeGreaterThan(0)
    for (const t of types) {
      expect(['Added', 'Changed', 'Deprecated', 'Removed', 'Fixed', 'Security']).toContain(t)
    }
  })
})

describe('scripts/changelog.ts', () => {
  it('gives a version section as release notes', () => {
    expect(releaseNotes(SAMPLE, '1.0.0')).toBe('### Added\n\n- everything\n')
  })

  it('refuses a version without a section, or with an empty one', () => {
    expect(() => releaseNotes(SAMPLE, '1.1.0')).toThrow('no "## [1.1.0]" section')
    const empty = SAMPLE.replace('### Added\n\n- everything\n', '')
    expect(() => releaseNotes(empty, '1.0.0')).toThrow('is empty')
  })

  it('cuts a release: Unreleased moves under the new version, links follow', () => {
    const out = cutRelease(SAMPLE, '1.1.0', '2027-02-03')
    expect(out).toContain(
      '## [Unreleased]\n\n## [1.1.0] - 2027-02-03\n\n### Added\n\n- min-age-days'
    )
    expect(releaseNotes(out, '1.1.0')).toBe('### Added\n\n- min-age-days\n\n### Fixed\n\n- a bug\n')
    expect(releaseNotes(out, '1.0.0')).toBe('### Added\n\n- everything\n')
    expect(out).toContain('[Unreleased]: https://github.com/acme/rotate/compare/v1.1.0...HEAD')
    expect(out).toContain('[1.1.0]: https://github.com/acme/rotate/compare/v1.0.0...v1.1.0')
    expect(releasedVersions(out)).toEqual(['1.1.0', '1.0.0'])
  })

  it('refuses an empty Unreleased, an old or repeated version and a bad version', () => {
    const cut = cutRelease(SAMPLE, '1.1.0', '2027-02-03')
    expect(() => cutRelease(cut, '1.2.0', '2027-02-04')).toThrow('lists no change')
    expect(() => cutRelease(SAMPLE, '1.0.0', '2027-02-03')).toThrow('already has')
    expect(() => cutRelease(SAMPLE, '0.9.0', '2027-02-03')).toThrow('not newer')
    expect(() => cutRelease(SAMPLE, 'v1.1', '2027-02-03')).toThrow('not a version')
    expect(() => cutRelease(SAMPLE, '1.1.0', 'tomorrow')).toThrow('not a date')
  })

  it('cuts the first release of this repository', () => {
    const out = cutRelease(changelog, '1.0.0', '2027-01-15')
    expect(releasedVersions(out)).toEqual(['1.0.0'])
    expect(releaseNotes(out, '1.0.0')).toContain('min-age-days')
  })
})

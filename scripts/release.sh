#!/usr/bin/env bash
# Prepares a release on a clean main: bumps package.json's version, moves the
# Unreleased entries of CHANGELOG.md into a new section, rebuilds dist/, runs
# the checks that need no sandbox, commits and tags vX.Y.Z. It pushes nothing:
# review, then `git push origin main vX.Y.Z`; the release workflow does the
# rest (full CI, checks, GitHub release, moving the major tag).
#
#   scripts/release.sh X.Y.Z
set -euo pipefail

version="${1:-}"
if ! [[ "$version" =~ ^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$ ]]; then
  echo "usage: scripts/release.sh X.Y.Z (got '${version}')" >&2
  exit 2
fi
tag="v${version}"
cd "$(git rev-parse --show-toplevel)"

fail() {
  echo "release: $*" >&2
  exit 1
}

branch="$(git rev-parse --abbrev-ref HEAD)"
[ "$branch" = main ] || [ "${RELEASE_ALLOW_BRANCH:-}" = 1 ] ||
  fail "on branch '$branch': release from main (RELEASE_ALLOW_BRANCH=1 overrides)"
[ -z "$(git status --porcelain)" ] || fail "the working tree is not clean: commit or stash first"
if git rev-parse -q --verify "refs/tags/${tag}" >/dev/null; then
  fail "tag ${tag} exists already"
fi
current="$(node -p "require('./package.json').version")"
[ "$current" != "$version" ] || fail "package.json is at ${version} already"

echo "release: ${current} -> ${version}"
# Refuses an empty Unreleased section, a version not newer than the last one.
npx --no-install tsx scripts/changelog.ts release "$version" "$(date -u +%F)"
npm version --no-git-tag-version "$version" >/dev/null
npm run build
npm run format:check
npm run lint
npm run test:unit

git add package.json package-lock.json CHANGELOG.md dist
git commit -m "Release ${tag}"
git tag -a "$tag" -m "Release ${tag}"
echo "release: committed and tagged ${tag}. Review, then: git push origin main ${tag}"

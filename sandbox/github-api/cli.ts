// Runs the GitHub API stand-in on its own:
//   npx tsx sandbox/github-api/cli.ts [--owner acme] [--repo cloudbox] [--env production,staging] [--port 0]
// Prints the URL (use it as GITHUB_API_URL) and the tokens it accepts.

import { randomBytes } from 'node:crypto'
import { startGitHubStandIn } from './server.js'

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback
}

const token = (prefix: string): string => `${prefix}_${randomBytes(18).toString('base64url')}`
const tokens = {
  secrets: token('github_pat_full'),
  issues: token('ghs_issues'),
  readOnly: token('github_pat_noperm')
}
const environments = arg('env', 'production,staging')
  .split(',')
  .map((e) => e.trim())
  .filter((e) => e !== '')

const standIn = await startGitHubStandIn({
  owner: arg('owner', 'acme'),
  repo: arg('repo', 'cloudbox'),
  environments,
  port: Number(arg('port', '0')),
  tokens: {
    [tokens.secrets]: ['secrets', 'environments', 'variables', 'issues'],
    [tokens.issues]: ['issues'],
    [tokens.readOnly]: []
  }
})

console.log(`GitHub API stand-in listening: GITHUB_API_URL=${standIn.url}`)
console.log(`environments: ${environments.join(', ') || '(none)'}`)
console.log(`secrets-token (secrets, environments, variables, issues): ${tokens.secrets}`)
console.log(`github-token (issues only): ${tokens.issues}`)
console.log(`token without permissions: ${tokens.readOnly}`)

const shutdown = (): void => {
  void standIn.stop().then(() => process.exit(0))
}
process.on('SIGINT', shutdown)
process.on('SIGTERM', shutdown)

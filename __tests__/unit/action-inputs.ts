// Test helper: the action's inputs as the runner sets them.
import { readFileSync } from 'node:fs'

/** Inputs as the runner sets them: action.yml defaults plus the given ones. */
export function inputs(overrides: Record<string, string> = {}): (name: string) => string {
  const defaults: Record<string, string> = {}
  const yml = readFileSync(new URL('../../action.yml', import.meta.url), 'utf8')
  let current = ''
  for (const line of yml.split('\n')) {
    const name = /^ {2}([a-z-]+):$/.exec(line)
    if (name) current = name[1]
    const def = /^ {4}default: (.*)$/.exec(line)
    if (def && current) defaults[current] = def[1].replace(/^'(.*)'$/, '$1').replace(/''/g, "'")
  }
  const values: Record<string, string> = {
    ...defaults,
    'github-token': 'ghs_issue',
    repository: 'acme/cloudbox',
    'secrets-token': 'github_pat_x',
    'ssh-host': 'prod.example.com',
    'ssh-user': 'deploy',
    'ssh-private-key': '-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----',
    'ssh-fingerprint': 'SHA256:' + 'A'.repeat(43),
    'deploy-path': '/opt/cloudbox',
    ...overrides
  }
  return (name) => values[name] ?? ''
}

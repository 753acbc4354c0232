// Inputs → one typed, validated config. Nothing here contacts anything: every
// bad input is refused before the first network call.
import {
  bool,
  checkSecretName,
  ConfigError,
  hostKeyPin,
  type InputReader,
  integer,
  parseCredentials,
  parseKeys,
  PATH_SEGMENT_SAFE,
  POSTGRES_IDENT,
  reason,
  relativePath,
  required,
  SERVICE_NAME,
  splitList,
  url
} from './config-inputs.js'

export type Mode = 'immediate' | 'graceful' | 'retire-previous'

/** targeted: restart only the services that receive a rotated key; all: the runbook's down/up. */
export type Restart = 'targeted' | 'all'

/** compose: a docker compose project; swarm: a stack deployed with `docker stack deploy` (docs/ENGINES.md). */
export type Target = 'compose' | 'swarm'

export interface RotatedKey {
  /** Key in the host's .env, e.g. JWT_SECRET. */
  envKey: string
  /** Name of the Actions secret that receives the value. */
  secretName: string
}

export interface Credentials {
  email: string
  password: string
}

export type HostKeyPin =
  | { kind: 'known-hosts'; lines: string }
  | { kind: 'fingerprint'; fingerprint: string }
  | { kind: 'insecure-skip' }

export interface Config {
  secretsToken: string
  githubToken: string
  owner: string
  repo: string
  environments: string[]
  repositorySecrets: boolean
  /** Create a rotated secret in a listed scope that does not hold it (first set-up). */
  createMissing: boolean
  /** Environments holding a same-named secret of another app. */
  ignoreEnvironments: string[]
  keys: RotatedKey[]
  secretBytes: number
  ssh: {
    host: string
    port: number
    user: string
    privateKey: string
    passphrase?: string
    hostKey: HostKeyPin
    timeoutSeconds: number
  }
  deployPath: string
  composeFile: string
  envFile: string
  /** Null when `auto`. */
  composeCommand: string | null
  postgresService: string
  /** Empty: resolved from the host's .env. */
  postgresUser: string
  postgresDb: string
  revokeSql: string
  healthUrl: string
  healthTimeoutSeconds: number
  mode: Mode
  restart: Restart
  target: Target
  /** The stack's name on the Swarm (target swarm). */
  stackName: string
  /** Services that verify tokens and must receive <KEY>_PREVIOUS; empty: every service receiving a rotated key. */
  gracefulServices: string[]
  dryRun: boolean
  recover: boolean
  reason: string
  loginUrl: string
  adminCredentials?: Credentials
  userCredentials?: Credentials
  adminCheckUrl: string
  userCheckUrl: string
  jwtErrorPattern: RegExp
  createIssue: boolean
  issueLabels: string[]
  issueAssignees: string[]
  rotationDateVariable: string
  backupRetention: number
}

/** The deploy directory's name as compose derives a project name from it. */
export function defaultStackName(deployPath: string): string {
  const base = deployPath.replace(/\/+$/, '').split('/').pop() ?? ''
  return base.toLowerCase().replace(/[^a-z0-9_-]/g, '')
}

function readTarget(read: InputReader): { target: Target; stackName: string } {
  const target = (read('target').trim() || 'compose') as Target
  if (!['compose', 'swarm'].includes(target)) {
    throw new ConfigError('target', `expected "compose" or "swarm", got "${target}"`)
  }
  const given = read('stack-name').trim()
  const stackName = given || defaultStackName(read('deploy-path').trim())
  if (target === 'swarm' && !SERVICE_NAME.test(stackName)) {
    throw new ConfigError(
      'stack-name',
      given === ''
        ? `cannot derive a stack name from deploy-path "${read('deploy-path').trim()}": set stack-name`
        : `"${given}" is not a stack name (letters, digits, _ . -, starting with a letter or digit)`
    )
  }
  return { target, stackName }
}

/** What target swarm does not do (yet): refused before anything is contacted. */
function checkSwarmCombinations(config: Config): void {
  if (config.restart === 'all') {
    throw new ConfigError(
      'restart',
      'is "all", but target swarm has no down / up: docker stack deploy updates exactly the services whose definition changes. Leave restart at its default'
    )
  }
  if (config.recover) {
    throw new ConfigError(
      'recover',
      'is not supported with target swarm yet: restore the newest .env.backup.<stamp> over the .env and run docker stack deploy by hand (docs/ENGINES.md)'
    )
  }
}

export function readConfig(read: InputReader): Config {
  const repository = required(read, 'repository')
  const repoMatch = /^([A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)\/([A-Za-z0-9._-]+)$/.exec(
    repository
  )
  if (repoMatch === null || repoMatch[2] === '.' || repoMatch[2] === '..') {
    throw new ConfigError('repository', `expected "owner/repo", got "${repository}"`)
  }

  const mode = (read('mode').trim() || 'immediate') as Mode
  if (!['immediate', 'graceful', 'retire-previous'].includes(mode)) {
    throw new ConfigError(
      'mode',
      `expected "immediate", "graceful" or "retire-previous", got "${mode}"`
    )
  }

  const restart = (read('restart').trim() || 'targeted') as Restart
  if (!['targeted', 'all'].includes(restart)) {
    throw new ConfigError('restart', `expected "targeted" or "all", got "${restart}"`)
  }
  const { target, stackName } = readTarget(read)
  const gracefulServices = splitList(read('graceful-services'))
  for (const service of gracefulServices) {
    if (!SERVICE_NAME.test(service)) {
      throw new ConfigError('graceful-services', `"${service}" is not a compose service name`)
    }
  }
  if (new Set(gracefulServices).size !== gracefulServices.length) {
    throw new ConfigError('graceful-services', 'lists a service twice')
  }

  const environments = splitList(read('environments'))
  for (const env of environments) {
    if (env.length > 255 || /[\0\r\n]/.test(env)) {
      throw new ConfigError('environments', `"${env}" is not a valid environment name`)
    }
  }
  if (new Set(environments).size !== environments.length) {
    throw new ConfigError('environments', 'lists an environment twice')
  }
  const repositorySecrets = bool(read, 'repository-secrets', true)
  const createMissing = bool(read, 'create-missing', false)
  const ignoreEnvironments = splitList(read('ignore-environments'))
  const both = ignoreEnvironments.filter((e) =>
    environments.some((l) => l.toLowerCase() === e.toLowerCase())
  )
  if (both.length > 0) {
    throw new ConfigError(
      'ignore-environments',
      `names ${both.join(', ')}, which environments lists too: an environment is either rotated or ignored`
    )
  }

  const deployPath = required(read, 'deploy-path').replace(/(.)\/+$/, '$1')
  if (!deployPath.startsWith('/') || !PATH_SEGMENT_SAFE.test(deployPath)) {
    throw new ConfigError(
      'deploy-path',
      `expected an absolute path on the host, got "${deployPath}"`
    )
  }

  const composeCommandRaw = read('compose-command').trim() || 'auto'
  if (composeCommandRaw !== 'auto' && !/^[A-Za-z0-9_./ -]+$/.test(composeCommandRaw)) {
    throw new ConfigError(
      'compose-command',
      `expected "auto" or a command prefix such as "docker compose" (letters, digits, / . _ - and spaces), got "${composeCommandRaw}"`
    )
  }

  const postgresService = read('postgres-service').trim() || 'postgres'
  if (!SERVICE_NAME.test(postgresService)) {
    throw new ConfigError('postgres-service', `"${postgresService}" is not a compose service name`)
  }
  for (const name of ['postgres-user', 'postgres-db']) {
    const value = read(name).trim()
    if (value !== '' && !POSTGRES_IDENT.test(value)) {
      throw new ConfigError(name, `"${value}" is not a plain PostgreSQL name`)
    }
  }

  let jwtErrorPattern: RegExp
  const patternRaw = read('jwt-error-pattern').trim()
  try {
    jwtErrorPattern = new RegExp(
      patternRaw || 'jwt|jsonwebtoken|invalid signature|secretOrPrivateKey',
      'i'
    )
  } catch (error) {
    throw new ConfigError(
      'jwt-error-pattern',
      `is not a valid regular expression: ${(error as Error).message}`
    )
  }

  const revokeSql = read('revoke-sql').trim() || 'DELETE FROM refresh_tokens;'
  // The action wraps it in its own transaction to try it in preflight.
  if (
    /(^|;)\s*(BEGIN|COMMIT|ROLLBACK|END|ABORT|START\s+TRANSACTION|SAVEPOINT|RELEASE)\b/i.test(
      revokeSql
    )
  ) {
    throw new ConfigError(
      'revoke-sql',
      'must not control its own transaction (BEGIN, COMMIT, ROLLBACK, ...): the action runs it in a transaction, first rolled back as a preflight trial'
    )
  }
  const rotationDateVariable = read('rotation-date-variable').trim()
  if (rotationDateVariable !== '') checkSecretName('rotation-date-variable', rotationDateVariable)

  const config: Config = {
    secretsToken: required(read, 'secrets-token'),
    githubToken: read('github-token').trim(),
    owner: repoMatch[1],
    repo: repoMatch[2],
    environments,
    repositorySecrets,
    createMissing,
    ignoreEnvironments,
    keys: parseKeys(read('keys') || 'JWT_SECRET,JWT_REFRESH_SECRET'),
    secretBytes: integer(read, 'secret-bytes', 64, 32, 1024),
    ssh: {
      host: required(read, 'ssh-host'),
      port: integer(read, 'ssh-port', 22, 1, 65535),
      user: required(read, 'ssh-user'),
      privateKey: required(read, 'ssh-private-key'),
      passphrase: read('ssh-passphrase') || undefined,
      hostKey: hostKeyPin(read),
      timeoutSeconds: integer(read, 'ssh-timeout', 30, 1, 600)
    },
    deployPath,
    composeFile: relativePath((n) => read(n) || 'docker-compose.prod.yml', 'compose-file'),
    envFile: relativePath((n) => read(n) || '.env', 'env-file'),
    composeCommand: composeCommandRaw === 'auto' ? null : composeCommandRaw,
    postgresService,
    postgresUser: read('postgres-user').trim(),
    postgresDb: read('postgres-db').trim(),
    revokeSql,
    healthUrl: url((n) => read(n) || 'http://localhost:3001/api/health/ping', 'health-url'),
    healthTimeoutSeconds: integer(read, 'health-timeout', 120, 5, 3600),
    mode,
    restart,
    target,
    stackName,
    gracefulServices,
    dryRun: bool(read, 'dry-run', false),
    recover: bool(read, 'recover', false),
    reason: reason(read),
    loginUrl: url((n) => read(n) || 'http://localhost:3001/api/auth/login', 'login-url'),
    adminCredentials: parseCredentials('admin-credentials', read('admin-credentials')),
    userCredentials: parseCredentials('user-credentials', read('user-credentials')),
    adminCheckUrl: url((n) => read(n) || 'http://localhost:3001/api/health', 'admin-check-url'),
    userCheckUrl: url((n) => read(n) || 'http://localhost:3001/api/users/me', 'user-check-url'),
    jwtErrorPattern,
    createIssue: bool(read, 'create-issue', true),
    issueLabels: splitList(read('issue-labels')),
    issueAssignees: splitList(read('issue-assignees')),
    rotationDateVariable,
    backupRetention: integer(read, 'backup-retention', 5, 1, 100)
  }

  if (!config.repositorySecrets && config.environments.length === 0) {
    throw new ConfigError(
      'repository-secrets',
      'is false and no environments are listed: the new secrets would be written nowhere'
    )
  }
  if (config.target === 'swarm') checkSwarmCombinations(config)
  if (config.recover && config.dryRun) {
    throw new ConfigError('recover', 'cannot be combined with dry-run')
  }
  if (!config.dryRun && config.createIssue && config.githubToken === '') {
    throw new ConfigError('github-token', 'is empty but create-issue is true')
  }
  return config
}

/** The secret (and environment) scopes a run writes to, in a fixed order. */
export type SecretScope = { kind: 'repository' } | { kind: 'environment'; name: string }

export function secretScopes(
  config: Pick<Config, 'repositorySecrets' | 'environments'>
): SecretScope[] {
  const scopes: SecretScope[] = []
  if (config.repositorySecrets) scopes.push({ kind: 'repository' })
  for (const name of config.environments) scopes.push({ kind: 'environment', name })
  return scopes
}

export function scopeLabel(scope: SecretScope): string {
  return scope.kind === 'repository' ? 'repository' : `environment:${scope.name}`
}

export {
  ConfigError,
  parseCredentials,
  parseKeys,
  splitList,
  type InputReader
} from './config-inputs.js'

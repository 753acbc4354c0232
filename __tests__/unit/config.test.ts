import { describe, expect, it } from '@jest/globals'
import { inputs } from './action-inputs.js'
import { ConfigError, parseKeys, readConfig, secretScopes, splitList } from '../../src/config.js'

function refusal(overrides: Record<string, string>): ConfigError {
  try {
    readConfig(inputs(overrides))
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError)
    return error as ConfigError
  }
  throw new Error('expected a ConfigError')
}

describe('readConfig', () => {
  it('reads the action.yml defaults into a typed config', () => {
    const config = readConfig(inputs())
    expect(config.owner).toBe('acme')
    expect(config.repo).toBe('cloudbox')
    expect(config.keys).toEqual([
      { envKey: 'JWT_SECRET', secretName: 'JWT_SECRET' },
      { envKey: 'JWT_REFRESH_SECRET', secretName: 'JWT_REFRESH_SECRET' }
    ])
    expect(config.secretBytes).toBe(64)
    expect(config.ssh.port).toBe(22)
    expect(config.ssh.timeoutSeconds).toBe(30)
    expect(config.ssh.hostKey).toEqual({
      kind: 'fingerprint',
      fingerprint: 'SHA256:' + 'A'.repeat(43)
    })
    expect(config.composeFile).toBe('docker-compose.prod.yml')
    expect(config.envFile).toBe('.env')
    expect(config.composeCommand).toBeNull()
    expect(config.postgresService).toBe('postgres')
    expect(config.revokeSql).toBe('DELETE FROM refresh_tokens;')
    expect(config.healthUrl).toBe('http://localhost:3001/api/health/ping')
    expect(config.healthTimeoutSeconds).toBe(120)
    expect(config.mode).toBe('immediate')
    expect(config.restart).toBe('targeted')
    expect(config.gracefulServices).toEqual([])
    expect(config.dryRun).toBe(false)
    expect(config.recover).toBe(false)
    expect(config.reason).toBe('routine')
    expect(config.jwtErrorPattern.test('JsonWebTokenError: Invalid Signature')).toBe(true)
    expect(config.issueLabels).toEqual(['security', 'secret-rotation'])
    expect(config.rotationDateVariable).toBe('JWT_SECRETS_ROTATED_AT')
    expect(config.backupRetention).toBe(5)
    expect(secretScopes(config)).toEqual([{ kind: 'repository' }])
  })

  it('reads environments, key mappings and credentials', () => {
    const config = readConfig(
      inputs({
        environments: 'production\nstaging, preview',
        keys: 'JWT_SECRET=PROD_JWT_SECRET,JWT_REFRESH_SECRET',
        'admin-credentials': '{"email":"admin@example.com","password":"p@ss word"}',
        'ssh-known-hosts': '[h]:2222 ssh-ed25519 AAAA',
        'ssh-fingerprint': '',
        'compose-command': '/opt/bin/docker compose'
      })
    )
    expect(config.environments).toEqual(['production', 'staging', 'preview'])
    expect(config.keys[0]).toEqual({ envKey: 'JWT_SECRET', secretName: 'PROD_JWT_SECRET' })
    expect(config.adminCredentials).toEqual({ email: 'admin@example.com', password: 'p@ss word' })
    expect(config.userCredentials).toBeUndefined()
    expect(config.ssh.hostKey.kind).toBe('known-hosts')
    expect(config.composeCommand).toBe('/opt/bin/docker compose')
    expect(secretScopes(config).map((s) => (s.kind === 'repository' ? 'repo' : s.name))).toEqual([
      'repo',
      'production',
      'staging',
      'preview'
    ])
  })

  it.each([
    [{ 'secrets-token': '' }, 'secrets-token', /required/],
    [{ 'ssh-host': '' }, 'ssh-host', /required/],
    [{ 'ssh-user': ' ' }, 'ssh-user', /required/],
    [{ 'ssh-private-key': '' }, 'ssh-private-key', /required/],
    [{ 'deploy-path': '' }, 'deploy-path', /required/],
    [{ repository: 'acme' }, 'repository', /owner\/repo/],
    [{ repository: 'acme/cloud/box' }, 'repository', /owner\/repo/],
    [{ repository: '-acme/x' }, 'repository', /owner\/repo/],
    [{ keys: 'JWT SECRET' }, 'keys', /not a valid .env key/],
    [{ keys: 'A=B=C' }, 'keys', /KEY=SECRET_NAME/],
    [{ keys: ',' }, 'keys', /no key/],
    [{ keys: 'JWT_SECRET=SAME,JWT_REFRESH_SECRET=same' }, 'keys', /both map to the secret/],
    [{ keys: 'JWT_SECRET,JWT_SECRET' }, 'keys', /twice/],
    [{ keys: 'JWT_SECRET,ENCRYPTION_KEY' }, 'keys', /re-encryption/],
    [{ keys: 'JWT_SECRET_PREVIOUS' }, 'keys', /_PREVIOUS/],
    [{ keys: 'JWT_SECRET=GITHUB_JWT' }, 'keys', /GITHUB_/],
    [{ keys: 'JWT_SECRET=1JWT' }, 'keys', /not a valid secret name/],
    [{ keys: 'JWT_SECRET=JWT-SECRET' }, 'keys', /not a valid secret name/],
    [{ 'secret-bytes': '16' }, 'secret-bytes', /32 to 1024/],
    [{ 'secret-bytes': '2048' }, 'secret-bytes', /32 to 1024/],
    [{ 'secret-bytes': '64.5' }, 'secret-bytes', /whole number/],
    [{ 'ssh-port': '0' }, 'ssh-port', /1 to 65535/],
    [{ 'ssh-port': '70000' }, 'ssh-port', /1 to 65535/],
    [{ 'ssh-port': 'ssh' }, 'ssh-port', /whole number/],
    [{ 'ssh-timeout': '0' }, 'ssh-timeout', /1 to 600/],
    [{ 'health-timeout': '1' }, 'health-timeout', /5 to 3600/],
    [{ 'backup-retention': '0' }, 'backup-retention', /1 to 100/],
    [{ mode: 'fast' }, 'mode', /immediate/],
    [{ restart: 'some' }, 'restart', /"targeted" or "all", got "some"/],
    [{ 'graceful-services': 'backend,back end' }, 'graceful-services', /service name/],
    [{ 'graceful-services': 'backend,backend' }, 'graceful-services', /twice/],
    [{ 'dry-run': 'maybe' }, 'dry-run', /true.*false/],
    [{ 'admin-credentials': '{"email":"a@b"}' }, 'admin-credentials', /email.*password/],
    [{ 'user-credentials': 'email=a@b password=x' }, 'user-credentials', /not valid JSON/],
    [{ 'user-credentials': '["a","b"]' }, 'user-credentials', /JSON object/],
    [{ 'ssh-fingerprint': '', 'ssh-known-hosts': '' }, 'ssh-known-hosts', /must be pinned/],
    [{ 'ssh-fingerprint': 'MD5:aa:bb' }, 'ssh-fingerprint', /SHA256/],
    [{ 'ssh-known-hosts': 'h ssh-ed25519 AAAA' }, 'ssh-fingerprint', /not both/],
    [{ 'jwt-error-pattern': 'jwt(' }, 'jwt-error-pattern', /regular expression/],
    [{ 'deploy-path': 'opt/cloudbox' }, 'deploy-path', /absolute/],
    [{ 'compose-file': '../other.yml' }, 'compose-file', /inside deploy-path/],
    [{ 'env-file': '/etc/passwd' }, 'env-file', /inside deploy-path/],
    [{ 'compose-command': 'docker compose; rm -rf /' }, 'compose-command', /command prefix/],
    [{ 'postgres-service': 'post gres' }, 'postgres-service', /service name/],
    [{ 'postgres-user': "x'; drop" }, 'postgres-user', /PostgreSQL name/],
    [{ 'health-url': 'localhost:3001/ping' }, 'health-url', /URL/],
    [{ 'login-url': 'ftp://x/y' }, 'login-url', /http/],
    [{ 'rotation-date-variable': 'ROTATED AT' }, 'rotation-date-variable', /not a valid/],
    [{ 'repository-secrets': 'false' }, 'repository-secrets', /written nowhere/],
    [{ environments: 'prod,prod' }, 'environments', /twice/],
    [{ recover: 'true', 'dry-run': 'true' }, 'recover', /dry-run/],
    [{ reason: 'a\nb' }, 'reason', /one line/],
    [{ 'revoke-sql': 'BEGIN; DELETE FROM refresh_tokens; COMMIT;' }, 'revoke-sql', /transaction/],
    [{ 'revoke-sql': 'DELETE FROM refresh_tokens; commit' }, 'revoke-sql', /transaction/],
    [{ target: 'kubernetes' }, 'target', /"compose" or "swarm", got "kubernetes"/],
    [{ target: 'swarm', 'stack-name': 'my stack' }, 'stack-name', /not a stack name/],
    [{ target: 'swarm', 'deploy-path': '/' }, 'stack-name', /cannot derive/],
    [{ target: 'swarm', restart: 'all' }, 'restart', /no down \/ up/],
    [{ target: 'swarm', recover: 'true' }, 'recover', /not supported with target swarm/]
  ])('refuses %j naming %s', (overrides, input, message) => {
    const error = refusal(overrides)
    expect(error.input).toBe(input)
    expect(error.message).toContain(`Input "${input}"`)
    expect(error.message).toMatch(message)
  })

  it('reads restart and graceful-services', () => {
    const config = readConfig(inputs({ restart: 'all', 'graceful-services': 'backend,\nworker' }))
    expect(config.restart).toBe('all')
    expect(config.gracefulServices).toEqual(['backend', 'worker'])
  })

  it('reads target and stack-name; the stack name defaults to the deploy directory, as compose names a project', () => {
    expect(readConfig(inputs()).target).toBe('compose')
    const derived = readConfig(inputs({ target: 'swarm', 'deploy-path': '/srv/CloudBox.prod/' }))
    expect(derived.target).toBe('swarm')
    expect(derived.stackName).toBe('cloudboxprod')
    expect(readConfig(inputs({ target: 'swarm', 'stack-name': 'cbx' })).stackName).toBe('cbx')
  })

  it('never echoes a credential in its error', () => {
    const error = refusal({ 'admin-credentials': '{"email":"a@b","password":"hunter2-secret"' })
    expect(error.message).not.toContain('hunter2-secret')
  })

  it('accepts the insecure skip only when asked', () => {
    const config = readConfig(
      inputs({ 'ssh-fingerprint': '', 'ssh-insecure-skip-host-key-check': 'true' })
    )
    expect(config.ssh.hostKey).toEqual({ kind: 'insecure-skip' })
  })

  it('accepts a fingerprint line as ssh-keygen -lf prints it', () => {
    const fp = 'SHA256:' + 'b'.repeat(43)
    const config = readConfig(inputs({ 'ssh-fingerprint': `256 ${fp} root@host (ED25519)` }))
    expect(config.ssh.hostKey).toEqual({ kind: 'fingerprint', fingerprint: fp })
  })
})

describe('helpers', () => {
  it('splits lists on commas and newlines', () => {
    expect(splitList(' a, b\n\nc ,')).toEqual(['a', 'b', 'c'])
  })
  it('maps keys to secret names', () => {
    expect(parseKeys('A=B')).toEqual([{ envKey: 'A', secretName: 'B' }])
  })
})

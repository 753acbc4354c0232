import { describe, expect, it } from '@jest/globals'
import { readFileSync } from 'node:fs'
import {
  describeTargets,
  findTargets,
  isRotatedEnvFile,
  markerEnv,
  targetProblems,
  withoutEnvFiles
} from '../../src/host/targets.js'

const fixture = (name: string): string =>
  readFileSync(new URL(`../fixtures/targets/${name}`, import.meta.url), 'utf8')
const KEYS = ['JWT_SECRET', 'JWT_REFRESH_SECRET']
const ENV = `# production
POSTGRES_USER=cloudbox
POSTGRES_PASSWORD=pg-password-value
POSTGRES_PORT=5432
export REDIS_PASSWORD='redis-password-value'
JWT_SECRET=old-access-secret-value
JWT_REFRESH_SECRET="old-refresh-secret-value"
ENCRYPTION_KEY=encryption-key-value
`

function found(rawCompose = fixture('docker-compose.prod.yml')) {
  const { keyOf } = markerEnv(ENV, KEYS)
  return findTargets(fixture('config-1.29.yml'), rawCompose, {
    rotatedKeys: KEYS,
    keyOf,
    composeFile: 'docker-compose.prod.yml',
    envFile: '.env'
  })
}

const base = {
  mode: 'immediate',
  restart: 'targeted',
  gracefulServices: [] as string[],
  postgresService: 'postgres',
  composeFile: 'docker-compose.prod.yml',
  envFile: '.env',
  rotatedKeys: KEYS
}

describe('markerEnv', () => {
  it('replaces rotated and secret-looking values, keeps the rest, adds _PREVIOUS markers', () => {
    const { text, keyOf } = markerEnv(ENV, KEYS)
    for (const secret of [
      'pg-password',
      'redis-password',
      'old-access',
      'old-refresh',
      'encryption-key'
    ])
      expect(text).not.toContain(secret)
    expect(text).toContain('POSTGRES_USER=cloudbox\n')
    expect(text).toContain('POSTGRES_PORT=5432\n')
    expect(text).toContain("export REDIS_PASSWORD='ROTATIONMARKER1X'")
    // The numbering the fixture's resolved output was made with.
    expect(keyOf).toEqual({
      ROTATIONMARKER0X: 'POSTGRES_PASSWORD',
      ROTATIONMARKER1X: 'REDIS_PASSWORD',
      ROTATIONMARKER2X: 'JWT_SECRET',
      ROTATIONMARKER3X: 'JWT_REFRESH_SECRET',
      ROTATIONMARKER4X: 'ENCRYPTION_KEY',
      ROTATIONMARKER5X: 'JWT_SECRET_PREVIOUS',
      ROTATIONMARKER6X: 'JWT_REFRESH_SECRET_PREVIOUS'
    })
    expect(
      text.endsWith(
        'JWT_SECRET_PREVIOUS=ROTATIONMARKER5X\nJWT_REFRESH_SECRET_PREVIOUS=ROTATIONMARKER6X\n'
      )
    ).toBe(true)
  })

  it('marks an existing _PREVIOUS line in place', () => {
    const { text } = markerEnv(`${ENV}JWT_SECRET_PREVIOUS=older-value\n`, ['JWT_SECRET'])
    expect(text).not.toContain('older-value')
    expect(text.match(/JWT_SECRET_PREVIOUS=/g)).toHaveLength(1)
  })
})

describe('withoutEnvFiles', () => {
  it('drops every env_file (string or list), keeps anchors and merge keys', () => {
    const stripped = withoutEnvFiles(fixture('docker-compose.prod.yml'))
    expect(stripped).not.toMatch(/env_file/)
    expect(stripped).toMatch(/<<: \*app-env/)
    expect(stripped).toMatch(/AUTH_SECRET=\$\{JWT_SECRET\}/)
  })
})

describe('findTargets on docker-compose 1.29 output', () => {
  it('finds the services that receive a rotated key, and why', () => {
    const { services, targets } = found()
    expect(services).toEqual([
      'init',
      'postgres',
      'redis',
      'backend',
      'worker',
      'frontend',
      'glitchtip',
      'sidecar',
      'tokencheck'
    ])
    expect(targets.map((t) => t.service)).toEqual(['backend', 'worker', 'sidecar', 'tokencheck'])
    const [backend, worker, sidecar, tokencheck] = targets
    expect(backend.keys).toEqual(KEYS)
    expect(backend.previous).toEqual(KEYS)
    expect(worker.previous).toEqual([])
    expect(sidecar).toMatchObject({ keys: KEYS, previous: KEYS, reasons: ['env_file .env'] })
    expect(tokencheck).toMatchObject({
      keys: ['JWT_SECRET'],
      previous: [],
      otherEnvFile: true,
      reasons: ['environment AUTH_SECRET (JWT_SECRET)']
    })
    expect(describeTargets(targets)).toBe(
      'backend (environment JWT_REFRESH_SECRET, JWT_SECRET), worker (environment JWT_REFRESH_SECRET, JWT_SECRET), sidecar (env_file .env), tokencheck (environment AUTH_SECRET (JWT_SECRET))'
    )
  })

  it('sees a key passed on a command line too', () => {
    const { keyOf } = markerEnv(ENV, ['JWT_SECRET'])
    const resolved = 'services:\n  cli:\n    command: [run, --secret, ROTATIONMARKER2X]\n'
    const { targets } = findTargets(resolved, 'services:\n  cli:\n    image: x\n', {
      rotatedKeys: ['JWT_SECRET'],
      keyOf,
      composeFile: 'c.yml',
      envFile: '.env'
    })
    expect(targets).toEqual([
      {
        service: 'cli',
        keys: ['JWT_SECRET'],
        previous: [],
        reasons: ['command JWT_SECRET'],
        otherEnvFile: false
      }
    ])
  })

  it('resolves env_file paths against the compose file directory', () => {
    expect(isRotatedEnvFile('./.env', 'docker-compose.prod.yml', '.env')).toBe(true)
    expect(isRotatedEnvFile('../.env', 'deploy/compose.yml', '.env')).toBe(true)
    expect(isRotatedEnvFile('.env', 'deploy/compose.yml', '.env')).toBe(false)
    expect(isRotatedEnvFile('other.env', 'docker-compose.prod.yml', '.env')).toBe(false)
  })
})

describe('targetProblems', () => {
  const onlyAppServices = (): ReturnType<typeof found> => {
    const f = found()
    return { ...f, targets: f.targets.filter((t) => ['backend', 'worker'].includes(t.service)) }
  }

  it('accepts immediate targeted', () => {
    expect(targetProblems(found(), base)).toEqual([])
  })

  it('refuses when no service receives a rotated key', () => {
    const problems = targetProblems({ services: ['web'], targets: [] }, base)
    expect(problems).toHaveLength(1)
    expect(problems[0]).toMatch(
      /no service in docker-compose\.prod\.yml receives JWT_SECRET or JWT_REFRESH_SECRET.*would change nothing/
    )
  })

  it('refuses targeted when the database receives a rotated key', () => {
    const f = found()
    f.targets.push({ ...f.targets[0], service: 'postgres' })
    expect(targetProblems(f, base)[0]).toMatch(
      /postgres-service "postgres" receives a rotated key.*restart: all/
    )
    expect(targetProblems(f, { ...base, restart: 'all' })).toEqual([])
  })

  it('graceful, default: every receiving service must get _PREVIOUS, naming each and the line', () => {
    const problems = targetProblems(onlyAppServices(), { ...base, mode: 'graceful' })
    expect(problems).toHaveLength(1)
    expect(problems[0]).toMatch(
      /does not pass JWT_SECRET_PREVIOUS to worker, JWT_REFRESH_SECRET_PREVIOUS to worker\./
    )
    expect(problems[0]).toMatch(/"JWT_SECRET_PREVIOUS: \$\{JWT_SECRET_PREVIOUS:-\}"/)
    expect(problems[0]).toMatch(/graceful-services/)
  })

  it('graceful-services: backend accepts a compose file where only backend gets _PREVIOUS', () => {
    expect(
      targetProblems(onlyAppServices(), {
        ...base,
        mode: 'graceful',
        gracefulServices: ['backend']
      })
    ).toEqual([])
  })

  it('refuses an unknown service and one that receives no rotated key', () => {
    const problems = targetProblems(found(), {
      ...base,
      mode: 'graceful',
      gracefulServices: ['backend', 'api', 'frontend']
    })
    expect(problems).toEqual([
      expect.stringMatching(
        /graceful-services names "api", not a service of docker-compose\.prod\.yml \(services: init, postgres/
      ),
      expect.stringMatching(/graceful-services names frontend, which receives no rotated key/)
    ])
  })

  it('does not trust an env_file that is not the rotated .env', () => {
    const problems = targetProblems(found(), {
      ...base,
      mode: 'graceful',
      gracefulServices: ['tokencheck']
    })
    expect(problems).toHaveLength(1)
    expect(problems[0]).toMatch(/JWT_SECRET_PREVIOUS to tokencheck \(its env_file: is not \.env\)/)
  })

  it('trusts an env_file that is the rotated .env', () => {
    expect(
      targetProblems(found(), {
        ...base,
        mode: 'graceful',
        gracefulServices: ['sidecar', 'backend']
      })
    ).toEqual([])
  })
})

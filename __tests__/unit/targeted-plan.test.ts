import { describe, expect, it } from '@jest/globals'
import { restartLine, targetedCommands } from '../../src/host/targeted-plan.js'
import type { ServiceKeys } from '../../src/host/targets.js'

const targets: ServiceKeys[] = [
  {
    service: 'backend',
    keys: ['JWT_SECRET'],
    previous: [],
    reasons: ['environment JWT_SECRET'],
    otherEnvFile: false
  },
  {
    service: 'worker',
    keys: ['JWT_SECRET'],
    previous: [],
    reasons: ['env_file .env'],
    otherEnvFile: false
  }
]
const config = {
  restart: 'targeted' as const,
  postgresService: 'postgres',
  healthUrl: 'http://localhost:3001/api/health/ping',
  revokeSql: 'DELETE FROM refresh_tokens;'
}
const pg = { user: 'cloudbox', db: 'cloudbox' }

describe('targeted plan', () => {
  it('says which services restart and why', () => {
    expect(restartLine('targeted', targets)).toBe(
      'Host: restart targeted: 2 service(s) receive a rotated key and will restart: backend (environment JWT_SECRET), worker (env_file .env); every other service keeps running'
    )
    expect(restartLine('all', targets)).toMatch(
      /^Host: restart all \(down \/ up of every service\)/
    )
  })

  it('immediate: stop and up -d name the targets; the revoke goes through docker exec', () => {
    const commands = targetedCommands(config, 'immediate', 'docker-compose -f c.yml', targets, pg)
    expect(commands.stop).toMatch(/^docker-compose -f c\.yml stop backend worker \(/)
    expect(commands.up).toBe(
      'docker-compose -f c.yml up -d backend worker (nothing else is recreated)'
    )
    expect(commands.revoke).toMatch(
      /^docker exec -i <postgres container> psql .* \(postgres keeps running\)$/
    )
    expect(commands.prepare).toMatch(/pg_isready/)
  })

  it('graceful has no revoke; restart all and recover keep the runbook commands', () => {
    const graceful = targetedCommands(config, 'graceful', 'dc', targets, pg)
    expect(graceful.revoke).toBeUndefined()
    expect(graceful.prepare).not.toMatch(/pg_isready/)
    expect(targetedCommands({ ...config, restart: 'all' }, 'immediate', 'dc', targets, pg)).toEqual(
      {}
    )
    expect(targetedCommands(config, 'recover', 'dc', targets, pg)).toEqual({})
  })
})

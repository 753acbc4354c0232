import { describe, expect, it } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parsePreflight, stepsFor } from '../../src/host/plan.js'
import { engineLine, manualStartCommand } from '../../src/host/swarm-plan.js'
import {
  composeStyleLogs,
  hostSteps,
  parseSwarmFacts,
  readStackFile,
  referencedVariables,
  stackEnv,
  swarmPreflightProblems,
  swarmTargetProblems
} from '../../src/host/swarm.js'

const KEYS = ['JWT_SECRET', 'JWT_REFRESH_SECRET']
const options = { rotatedKeys: KEYS, composeFile: 'docker-stack.yml', envFile: '.env' }

const STACK = `version: "3.8"
x-app-env: &app-env
  JWT_REFRESH_SECRET: "\${JWT_REFRESH_SECRET:?required}"
services:
  postgres:
    image: postgres
    environment:
      POSTGRES_PASSWORD: "\${POSTGRES_PASSWORD}"
  backend:
    image: app
    environment:
      <<: *app-env
      JWT_SECRET: "\${JWT_SECRET}"
      DATABASE_URL: "postgresql://u:$POSTGRES_PASSWORD@db/x"
  worker:
    image: app
    environment:
      - JWT_SECRET
      - PRICE=$$5
  signer:
    image: app
    command: ["sign", "--key-env", "TOKEN_KEY=\${JWT_SECRET}"]
  legacy:
    image: app
    env_file: .env
  redis:
    image: redis
`

describe('target swarm: the stack file', () => {
  it('finds every service that takes a rotated key, and how', () => {
    const stack = readStackFile(STACK, options)
    expect(stack.services).toEqual(['postgres', 'backend', 'worker', 'signer', 'legacy', 'redis'])
    expect(stack.targets.map((t) => [t.service, t.keys, t.reasons])).toEqual([
      [
        'backend',
        ['JWT_SECRET', 'JWT_REFRESH_SECRET'],
        ['environment JWT_REFRESH_SECRET, JWT_SECRET']
      ],
      ['worker', ['JWT_SECRET'], ['environment JWT_SECRET']],
      ['signer', ['JWT_SECRET'], ['command JWT_SECRET']],
      ['legacy', ['JWT_SECRET', 'JWT_REFRESH_SECRET'], ['env_file .env']]
    ])
    // $$ is a literal dollar; a bare name under environment: comes from the CLI's environment.
    expect(stack.variables).toEqual(['JWT_REFRESH_SECRET', 'JWT_SECRET', 'POSTGRES_PASSWORD'])
    expect(referencedVariables('a $$B ${C:-x} $D_1')).toEqual(['C', 'D_1'])
  })
  it('refuses what is no compose file', () => {
    expect(() => readStackFile('services: [unclosed\n', options)).toThrow()
    expect(() => readStackFile('version: "3.8"\n', options)).toThrow(/no services: mapping/)
  })
})

describe('target swarm: the staged environment of docker stack deploy', () => {
  it('exports only the variables the stack uses, quoted so that a shell reads them back byte for byte', () => {
    const env = [
      '# comment',
      'JWT_SECRET=first',
      'JWT_SECRET=\'it s $(not run) `x` \\ "q"\'',
      'UNUSED=never-staged',
      'PATH=/evil',
      'export POSTGRES_PASSWORD="pg pass"',
      ''
    ].join('\n')
    const text = stackEnv(env, ['JWT_SECRET', 'POSTGRES_PASSWORD', 'PATH', 'MISSING'])
    expect(text).not.toMatch(/UNUSED|PATH=|MISSING/)
    const dir = mkdtempSync(path.join(tmpdir(), 'swarm-unit-'))
    try {
      writeFileSync(path.join(dir, 'stack.env'), text, { mode: 0o600 })
      const seen = execFileSync(
        'sh',
        ['-c', 'set -a; . ./stack.env; printf "%s\\n%s" "$JWT_SECRET" "$POSTGRES_PASSWORD"'],
        { cwd: dir, encoding: 'utf8' }
      )
      const [jwtValue, pgValue] = seen.split('\n')
      // The last assignment wins, as compose reads a .env.
      expect(jwtValue).toBe('it s $(not run) `x` \\ "q"')
      expect(pgValue).toBe('pg pass')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('target swarm: preflight', () => {
  const facts = parsePreflight(
    [
      'deploy=ok',
      'compose_file=ok',
      'env_file=ok',
      'env_mode=600',
      'env_owner=0:0',
      'deploy_writable=yes',
      'http_client=curl',
      'detach=setsid',
      'timeout=ok',
      'lock=taken'
    ].join('\n')
  )
  const config = {
    deployPath: '/srv/cloudbox',
    composeFile: 'docker-stack.yml',
    envFile: '.env',
    composeCommand: 'auto',
    postgresService: 'postgres',
    stackName: 'cloudbox'
  }
  const problems = (out: string) =>
    swarmPreflightProblems(facts, parseSwarmFacts(out), config).join('\n')

  it('a manager running the stack has no problem, whatever compose says', () => {
    expect(
      problems(
        'docker_cli=26.1.5\nswarm_node=active true\nstacks=cloudbox \nstack_services=postgres backend worker '
      )
    ).toBe('')
  })
  it('names why the node cannot deploy the stack', () => {
    expect(problems('docker_cli=none')).toMatch(/the docker CLI is not installed/)
    expect(problems('docker_cli=26\nswarm_error=Cannot connect to the Docker daemon')).toMatch(
      /docker info failed on the host: Cannot connect/
    )
    expect(problems('docker_cli=26\nswarm_node=inactive false')).toMatch(
      /not part of a Swarm \(docker info: Swarm inactive\)/
    )
    expect(problems('docker_cli=26\nswarm_node=active false')).toMatch(
      /a Swarm worker, not a manager/
    )
    expect(problems('docker_cli=26\nswarm_node=error false')).toMatch(/not usable/)
    expect(
      problems('docker_cli=26\nswarm_node=active true\nstacks=other \nstack_services=')
    ).toMatch(/stack "cloudbox" is not deployed on this Swarm \(stacks: other\)/)
  })
  it('refuses a key-taking service the stack does not run, and a database outside the stack', () => {
    const stack = readStackFile(STACK, options)
    const refusal = swarmTargetProblems(stack, ['backend', 'worker', 'signer', 'redis'], {
      mode: 'immediate',
      gracefulServices: [],
      postgresService: 'postgres',
      composeFile: 'docker-stack.yml',
      envFile: '.env',
      stackName: 'cloudbox',
      rotatedKeys: KEYS
    }).join('\n')
    expect(refusal).toMatch(
      /legacy \(env_file .env\) receives a rotated key in docker-stack.yml but is not deployed in stack "cloudbox"/
    )
    expect(refusal).toMatch(/postgres-service "postgres" is not a service of stack "cloudbox"/)
  })
})

describe('target swarm: steps and logs', () => {
  it('compose keeps its own steps; swarm deploys, converges, then revokes', () => {
    for (const mode of ['immediate', 'graceful', 'retire-previous', 'recover'] as const)
      for (const restart of ['targeted', 'all'] as const)
        expect(hostSteps({ target: 'compose', restart }, mode)).toEqual(stepsFor(mode, restart))
    expect(hostSteps({ target: 'swarm', restart: 'targeted' }, 'immediate')).toEqual([
      'swarm-prepare',
      'backup',
      'swap',
      'deploy',
      'converge',
      'revoke',
      'health'
    ])
    expect(hostSteps({ target: 'swarm', restart: 'targeted' }, 'graceful')).not.toContain('revoke')
  })
  it('reads docker service logs as the log scan reads compose logs', () => {
    expect(
      composeStyleLogs(
        '2026-12-05T07:19:43.361000000Z cloudbox_backend.1@node1    | invalid signature\nplain'
      )
    ).toBe('cloudbox_backend.1@node1 | 2026-12-05T07:19:43.361000000Z invalid signature\nplain')
  })
})

describe('target swarm: what the orchestrator prints', () => {
  const c = {
    target: 'compose' as const,
    deployPath: '/srv/cloudbox',
    composeFile: 'docker-compose.prod.yml',
    envFile: '.env',
    stackName: 'cloudbox'
  }
  it('compose keeps its lines word for word', () => {
    expect(manualStartCommand(c, 'docker-compose')).toBe(
      'docker-compose -f docker-compose.prod.yml --env-file /srv/cloudbox/.env up -d'
    )
    const facts = parsePreflight('compose_cmd=docker-compose\ncompose_version=1.29.2\nservices=a b')
    expect(engineLine({ ...c } as never, facts)).toMatch(
      /^Host: docker-compose \(1.29.2\), services: /
    )
  })
  it('swarm says how to redeploy the restored .env by hand, the values read from the file', () => {
    const swarm = { ...c, target: 'swarm' as const, composeFile: 'docker-stack.yml' }
    expect(manualStartCommand(swarm, 'docker')).toBe(
      "set -a; . './.env'; set +a; docker stack deploy --resolve-image never -c docker-stack.yml cloudbox"
    )
    expect(engineLine(swarm as never, parsePreflight(''))).toBe(
      'Host: docker stack on a Swarm manager, stack cloudbox deployed from docker-stack.yml'
    )
  })
})

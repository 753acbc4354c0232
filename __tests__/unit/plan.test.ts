import { describe, expect, it } from '@jest/globals'
import {
  backupStamp,
  parsePreflight,
  chooseDetach,
  envFilePath,
  followDeadlineSeconds,
  preflightProblems,
  renderAssignments,
  retireAfterMs,
  shellQuote,
  stepsFor,
  tokenLifetimeMs
} from '../../src/host/plan.js'
import { execFileSync } from 'node:child_process'

const config = {
  deployPath: '/opt/cloudbox',
  composeFile: 'docker-compose.prod.yml',
  envFile: '.env',
  composeCommand: null,
  postgresService: 'postgres'
}

const healthy = [
  'deploy=ok',
  'compose_file=ok',
  'env_file=ok',
  'env_stat=600 1000:1000',
  'deploy_writable=yes',
  'compose_cmd=docker-compose',
  'compose_version=docker-compose version 1.29.2',
  'services=postgres backend worker',
  'http_client=curl',
  'detach=setsid',
  'same_fs=yes',
  'journal=terminal',
  'lock=taken'
].join('\n')

describe('steps per mode', () => {
  it('immediate follows the runbook', () => {
    expect(stepsFor('immediate')).toEqual([
      'backup',
      'down',
      'swap',
      'up-postgres',
      'wait-postgres',
      'revoke',
      'up',
      'health'
    ])
  })
  it('graceful and retire never run down or revoke', () => {
    for (const mode of ['graceful', 'retire-previous'] as const) {
      expect(stepsFor(mode)).toEqual(['backup', 'swap', 'up', 'health'])
    }
  })
  it('recover restores then starts', () => {
    expect(stepsFor('recover')).toEqual(['recover-restore', 'up', 'health'])
    expect(stepsFor('recover', 'targeted')).toEqual(['recover-restore', 'up', 'health'])
  })
  it('targeted immediate stops only the targets and never stops the database', () => {
    const steps = stepsFor('immediate', 'targeted')
    expect(steps).toEqual(['prepare', 'backup', 'stop', 'swap', 'revoke', 'up', 'health'])
    // Nothing that reads a rotated key runs between the swap and the revoke.
    expect(steps.slice(steps.indexOf('swap'), steps.indexOf('revoke') + 1)).toEqual([
      'swap',
      'revoke'
    ])
    expect(stepsFor('immediate', 'all')).toEqual(stepsFor('immediate'))
  })
  it('targeted graceful and retire record the containers first', () => {
    for (const mode of ['graceful', 'retire-previous'] as const) {
      expect(stepsFor(mode, 'targeted')).toEqual(['prepare', 'backup', 'swap', 'up', 'health'])
    }
  })
})

describe('parameters for the host script', () => {
  it('quotes every value as one shell word, whatever it holds', () => {
    const tricky = `it's "$(rm -rf /)" \`x\` $HOME; \\`
    const script = renderAssignments({ VALUE: tricky }) + 'printf %s "$VALUE"'
    expect(execFileSync('sh', ['-c', script], { encoding: 'utf8' })).toBe(tricky)
    expect(shellQuote("a'b")).toBe(`'a'\\''b'`)
  })
  it('refuses line breaks and odd names', () => {
    expect(() => renderAssignments({ VALUE: 'a\nb' })).toThrow(/line break/)
    expect(() => renderAssignments({ 'bad-name': 'x' })).toThrow(/bad parameter/)
  })
  it('stamps backups from the rotation time', () => {
    expect(backupStamp('2026-11-28T18:55:45.844Z')).toBe('20261128T185545Z')
  })
})

describe('preflight facts', () => {
  it('a healthy host has no problem', () => {
    const facts = parsePreflight(healthy)
    expect(facts.envMode).toBe('600')
    expect(facts.envOwner).toBe('1000:1000')
    expect(facts.services).toEqual(['postgres', 'backend', 'worker'])
    expect(preflightProblems(facts, config, false)).toEqual([])
  })
  it('names every missing piece', () => {
    const facts = parsePreflight(
      healthy
        .replace('compose_file=ok', 'compose_file=missing')
        .replace('http_client=curl', 'http_client=none')
        .replace('compose_cmd=docker-compose', 'compose_cmd=none')
    )
    const problems = preflightProblems(facts, config, false).join('\n')
    expect(problems).toMatch(/compose file \/opt\/cloudbox\/docker-compose.prod.yml does not exist/)
    expect(problems).toMatch(/neither curl nor wget/)
    expect(problems).toMatch(/no compose CLI found/)
  })
  it('refuses a .env whose owner, group or mode cannot be kept', () => {
    const problemsFor = (extra: string) =>
      preflightProblems(parsePreflight(`${healthy}\n${extra}`), config, false).join('\n')
    expect(problemsFor('env_owner_keep=no-owner')).toMatch(/owned by uid 1000, not by the SSH user/)
    expect(problemsFor('env_owner_keep=no-group')).toMatch(/belongs to group 1000.*not in/)
    expect(problemsFor('env_owner_keep=yes')).toBe('')
    expect(problemsFor('env_stat=unreadable')).toMatch(/cannot be read \(stat -L\)/)
    expect(problemsFor('env_dir_writable=no\nenv_real=/srv/shared/.env')).toMatch(
      /^\/srv\/shared \(the directory of the .env target\) is not writable/
    )
    expect(problemsFor('timeout=none')).toMatch(/`timeout` \(coreutils\) is not installed/)
  })
  it('bounds how long the action follows the host: every step and the rollback at the step timeout', () => {
    expect(followDeadlineSeconds({ healthTimeoutSeconds: 120 }, 7)).toBe(10 * 240 + 120)
    expect(followDeadlineSeconds({ healthTimeoutSeconds: 10 }, 5)).toBe(8 * 60 + 120)
  })
  it('chooses a detaching that outlives the session, or refuses', () => {
    const choose = (detach: string[], killUserProcesses?: string, linger?: string) =>
      chooseDetach({ detach, killUserProcesses, linger })
    expect(choose(['setsid', 'systemd-run'], 'yes', 'no')).toEqual({ detach: 'systemd-run' })
    expect(choose(['setsid'])).toEqual({ detach: 'setsid' })
    expect(choose(['setsid', 'systemd-run-user-capable'], 'no', 'no')).toEqual({ detach: 'setsid' })
    expect(choose(['setsid', 'systemd-run-user-capable'], 'yes', 'yes')).toEqual({
      detach: 'systemd-run-user'
    })
    expect(choose(['setsid', 'systemd-run-user-capable'], 'yes', 'no')).toEqual({
      problem: expect.stringMatching(/KillUserProcesses=yes.*loginctl enable-linger/)
    })
    expect(choose(['setsid', 'systemd-run-user-capable'], 'unknown', 'no')).toEqual({
      problem: expect.stringMatching(/cannot tell/)
    })
    expect(choose([])).toEqual({ problem: expect.stringMatching(/neither setsid nor systemd-run/) })
  })
  it('refuses a compose project that runs nothing, except when recovering', () => {
    const facts = parsePreflight(`${healthy}\ncompose_project=wrong\ncompose_running=0`)
    expect(preflightProblems(facts, config, false).join('\n')).toMatch(
      /compose project "wrong" \(COMPOSE_PROJECT_NAME\) of docker-compose.prod.yml has no container/
    )
    expect(preflightProblems(facts, config, true).join('\n')).not.toMatch(/has no container/)
    const interrupted = parsePreflight(
      `${healthy.replace('journal=terminal', 'journal=interrupted').replace('lock=taken', 'lock=not-taken')}\ncompose_running=0`
    )
    expect(preflightProblems(interrupted, config, false).join('\n')).toMatch(/recover: true/)
  })
  it('reads the symlink target', () => {
    const facts = parsePreflight(`${healthy}\nenv_link=/srv/shared/.env\nenv_real=/srv/shared/.env`)
    expect(facts.envLink).toBe('/srv/shared/.env')
    expect(facts.envReal).toBe('/srv/shared/.env')
    expect(envFilePath({ deployPath: '/srv/app/', envFile: '.env' })).toBe('/srv/app/.env')
  })
  it('an unknown postgres service', () => {
    const facts = parsePreflight(
      healthy.replace('services=postgres backend worker', 'services=db backend')
    )
    expect(preflightProblems(facts, config, false)[0]).toMatch(
      /postgres-service "postgres" is not a service/
    )
  })
  it('keeps only the first part of a compose config error', () => {
    const facts = parsePreflight(
      `${healthy}\ncompose_config_error=Missing mandatory value for "environment" option interpolating {'JWT_SECRET': 'literal'}`
    )
    const [problem] = preflightProblems(facts, config, false)
    expect(problem).toContain('Missing mandatory value')
    expect(problem).not.toContain('literal')
  })
  it('a running, an interrupted run and a stale lock', () => {
    const running = parsePreflight(
      healthy.replace('journal=terminal', 'journal=running').replace('lock=taken', 'lock=busy')
    )
    expect(preflightProblems(running, config, false)[0]).toMatch(/another rotation is running/)
    const interrupted = parsePreflight(
      healthy
        .replace('journal=terminal', 'journal=interrupted')
        .replace('lock=taken', 'lock=not-taken')
    )
    expect(preflightProblems(interrupted, config, false)[0]).toMatch(/recover: true/)
    const stale = parsePreflight(
      `${healthy.replace('lock=taken', 'lock=busy')}\nlock_holder=run=1-1-ab started=2026-01-01T00:00:00Z\nlock_age=3600\nlock_holder_alive=no`
    )
    const [problem] = preflightProblems(stale, config, false)
    expect(problem).toMatch(/stale rotation lock/)
    expect(problem).toContain('run=1-1-ab')
    expect(problem).toContain('3600 s')
  })
  it('recover refuses when there is nothing to recover', () => {
    const facts = parsePreflight(
      `${healthy.replace('lock=taken', 'lock=not-taken')}\nrecover=nothing-to-recover`
    )
    expect(preflightProblems(facts, config, true)[0]).toMatch(/nothing to recover/)
  })
})

describe('token lifetimes', () => {
  it.each([
    ['7d', 7 * 86400000],
    ['15m', 900000],
    ['2 days', 2 * 86400000],
    ['12h', 43200000],
    ['3600', 3600000],
    ['1.5h', 5400000],
    ['soon', undefined],
    [undefined, undefined]
  ])('%s', (value, ms) => {
    expect(tokenLifetimeMs(value)).toBe(ms)
  })
  it('retire after the longest lifetime, at least an hour (share cookies)', () => {
    expect(retireAfterMs({ access: '15m', refresh: '7d' }).ms).toBe(7 * 86400000)
    expect(retireAfterMs({ access: '15m', refresh: '30m' }).ms).toBe(3600000)
    expect(retireAfterMs({ refresh: '14d' }).why).toContain('JWT_REFRESH_EXPIRES_IN=14d')
    expect(retireAfterMs({}).why).toContain('7d (CloudBox default)')
  })
})

// target: swarm (pure): the host steps, which services of the stack file
// receive a rotated key, the staged environment `docker stack deploy` reads
// its values from, and what preflight refuses. docs/ENGINES.md tells the story.
import { parseDocument } from 'yaml'
import type { Config } from '../config.js'
import { parseEnv } from './dotenv.js'
import { preflightProblems, shellQuote, stepsFor, type HostFacts, type HostMode } from './plan.js'
import {
  describeTargets,
  isRotatedEnvFile,
  ServiceKeyCollector,
  targetProblems,
  type ServiceKeys
} from './targets.js'

/**
 * The host steps of target swarm. The revoke comes once the new tasks run:
 * a refresh token an old task issued until then is deleted too.
 */
export function swarmSteps(mode: HostMode): string[] {
  switch (mode) {
    case 'immediate':
      return ['swarm-prepare', 'backup', 'swap', 'deploy', 'converge', 'revoke', 'health']
    case 'graceful':
    case 'retire-previous':
      return ['swarm-prepare', 'backup', 'swap', 'deploy', 'converge', 'health']
    case 'recover':
      throw new Error('recover is not supported with target swarm')
  }
}

/** The host steps of a run, whatever the target. */
export function hostSteps(config: Pick<Config, 'target' | 'restart'>, mode: HostMode): string[] {
  return config.target === 'swarm' ? swarmSteps(mode) : stepsFor(mode, config.restart)
}

const REFERENCE = /\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*))/g

/** Variables a string interpolates (`$NAME`, `${NAME…}`; `$$` is a literal `$`). */
export function referencedVariables(text: string): string[] {
  const names: string[] = []
  for (const match of text.matchAll(REFERENCE)) {
    const name = match[1] ?? match[2]
    if (name !== undefined) names.push(name)
  }
  return names
}

type Plain = unknown

function strings(value: Plain): string[] {
  if (typeof value === 'string') return [value]
  if (Array.isArray(value)) return value.flatMap(strings)
  if (value !== null && typeof value === 'object') {
    return Object.entries(value as Record<string, Plain>).flatMap(([k, v]) => [k, ...strings(v)])
  }
  return []
}

/** An `environment:` block as [name, value] pairs; value null: taken from the CLI's environment. */
function environmentPairs(value: Plain): Array<[string, string | null]> {
  if (Array.isArray(value)) {
    return value.map((item) => {
      const text = String(item)
      const at = text.indexOf('=')
      return at === -1 ? [text, null] : [text.slice(0, at), text.slice(at + 1)]
    })
  }
  if (value !== null && typeof value === 'object') {
    return Object.entries(value as Record<string, Plain>).map(([k, v]) => [
      k,
      v === null || v === undefined ? null : String(v)
    ])
  }
  return []
}

function envFiles(value: Plain): string[] {
  if (value === null || value === undefined) return []
  const list = Array.isArray(value) ? value : [value]
  return list.map((item) =>
    typeof item === 'object' && item !== null
      ? String((item as { path?: unknown }).path)
      : String(item)
  )
}

export interface StackFile {
  /** Services of the stack file, in file order. */
  services: string[]
  /** Services that receive a rotated key, and how. */
  targets: ServiceKeys[]
  /** Every variable the file interpolates or takes from the CLI's environment. */
  variables: string[]
}

/**
 * Reads a stack file (a compose file for `docker stack deploy`): which
 * services receive a rotated key through `environment:` (`${KEY}`, `$KEY`,
 * inside a longer value, or a bare `KEY` the CLI fills from its
 * environment), another field (`command:`, labels…), or an `env_file:` that
 * is the rotated .env. Throws when it is no YAML mapping with `services:`.
 */
export function readStackFile(
  yaml: string,
  options: { rotatedKeys: string[]; composeFile: string; envFile: string }
): StackFile {
  const document = parseDocument(yaml, { merge: true })
  if (document.errors.length > 0) throw new Error(document.errors[0].message.split('\n')[0])
  const plain = document.toJSON() as { services?: Plain } | null
  const services = plain?.services
  if (services === null || typeof services !== 'object' || Array.isArray(services))
    throw new Error('it has no services: mapping')
  const variables = new Set<string>()
  for (const text of strings(plain)) {
    for (const name of referencedVariables(text)) variables.add(name)
  }
  const names: string[] = []
  const targets: ServiceKeys[] = []
  for (const [service, value] of Object.entries(services as Record<string, Plain>)) {
    names.push(service)
    const definition = value as Record<string, Plain> | null
    if (definition === null || typeof definition !== 'object') continue
    const collector = new ServiceKeyCollector(options.rotatedKeys)
    const files = envFiles(definition.env_file)
    const loadsRotated = files.some((f) =>
      isRotatedEnvFile(f, options.composeFile, options.envFile)
    )
    if (loadsRotated) collector.loadsEnvFile(options.envFile)
    for (const [field, value] of Object.entries(definition)) {
      if (field === 'environment') {
        for (const [name, text] of environmentPairs(value)) {
          if (text === null) {
            variables.add(name)
            collector.receive(name, 'environment', name)
            continue
          }
          for (const key of referencedVariables(text))
            collector.receive(key, 'environment', name === key ? name : `${name} (${key})`)
        }
        continue
      }
      for (const text of strings(value)) {
        for (const key of referencedVariables(text)) collector.receive(key, field, key)
      }
    }
    const target = collector.result(service, files.length > 0 && !loadsRotated)
    if (target) targets.push(target)
  }
  return { services: names, targets, variables: [...variables].sort() }
}

/** Never put in the deploy's environment: they would change how the CLI itself runs. */
const SHELL_OWN = new Set(['PATH', 'IFS', 'ENV', 'BASH_ENV', 'CDPATH', 'PS4'])

/**
 * The staged environment of `docker stack deploy` (a 0600 file the host
 * sources in a subshell): `export NAME='value'` for each variable the stack
 * file uses that the .env sets (the last assignment wins, as compose reads
 * it). The text is byte-per-character like the .env it comes from.
 */
export function stackEnv(envText: string, variables: string[]): string {
  const values = new Map<string, string>()
  for (const entry of parseEnv(envText)) values.set(entry.key, entry.value)
  return variables
    .filter((name) => values.has(name) && !SHELL_OWN.has(name))
    .map((name) => `export ${name}=${shellQuote(values.get(name) as string)}\n`)
    .join('')
}

export interface SwarmFacts {
  dockerCli?: string
  /** `docker info`'s "<LocalNodeState> <ControlAvailable>", e.g. "active true". */
  node?: string
  error?: string
  stacks: string[]
  /** Services of the deployed stack (stack-file names, without the stack prefix). */
  stackServices: string[]
}

export function parseSwarmFacts(stdout: string): SwarmFacts {
  const facts: SwarmFacts = { stacks: [], stackServices: [] }
  for (const line of stdout.split('\n')) {
    const at = line.indexOf('=')
    if (at <= 0) continue
    const value = line.slice(at + 1).trim()
    switch (line.slice(0, at)) {
      case 'docker_cli':
        facts.dockerCli = value
        break
      case 'swarm_node':
        facts.node = value
        break
      case 'swarm_error':
        facts.error = value
        break
      case 'stacks':
        facts.stacks = value.split(/\s+/).filter(Boolean)
        break
      case 'stack_services':
        facts.stackServices = value.split(/\s+/).filter(Boolean)
        break
    }
  }
  return facts
}

type SwarmConfig = Pick<
  Config,
  'deployPath' | 'composeFile' | 'envFile' | 'composeCommand' | 'postgresService' | 'stackName'
>

/**
 * Every reason the host refuses target swarm: the shared host checks (deploy
 * dir, stack file, .env, lock, detach…) and the Swarm's own.
 */
export function swarmPreflightProblems(
  facts: HostFacts,
  swarm: SwarmFacts,
  config: SwarmConfig
): string[] {
  // The compose-only checks (CLI, config, running containers) do not apply.
  const shared = preflightProblems(
    {
      ...facts,
      composeCmd: 'docker stack',
      composeConfigError: undefined,
      services: [],
      composeRunning: undefined
    },
    config,
    false
  )
  const problems = [...shared]
  if (swarm.dockerCli === 'none') {
    problems.push(
      'the docker CLI is not installed on the host: target swarm deploys with docker stack deploy'
    )
  } else if (swarm.error !== undefined) {
    problems.push(`docker info failed on the host: ${swarm.error}`)
  } else if (swarm.node !== undefined && swarm.node !== 'active true') {
    const [state, manager] = swarm.node.split(' ')
    problems.push(
      state === 'active' && manager === 'false'
        ? 'the host is a Swarm worker, not a manager: docker stack deploy runs on a manager. Set ssh-host to a manager node (docker node ls on a manager lists them)'
        : state === 'inactive'
          ? 'the host is not part of a Swarm (docker info: Swarm inactive): target swarm needs a Swarm manager. Use target compose for a compose project'
          : `the Swarm on the host is not usable (docker info: Swarm ${state}): fix the node first`
    )
  } else if (swarm.node === 'active true' && swarm.stackServices.length === 0) {
    problems.push(
      `stack "${config.stackName}" is not deployed on this Swarm (stacks: ${swarm.stacks.join(', ') || 'none'}): set stack-name to the name used with docker stack deploy`
    )
  }
  return problems
}

/**
 * What the stack file and the deployed stack must agree on: every service
 * that receives a rotated key is deployed (else it would keep the old value),
 * and the database the revoke runs in is part of the stack.
 */
export function swarmTargetProblems(
  stack: StackFile,
  deployed: string[],
  config: Pick<
    Config,
    'mode' | 'gracefulServices' | 'postgresService' | 'composeFile' | 'envFile' | 'stackName'
  > & { rotatedKeys: string[] }
): string[] {
  const problems = targetProblems(
    { services: stack.services, targets: stack.targets },
    { ...config, restart: 'all' }
  )
  const missing = stack.targets.filter((t) => !deployed.includes(t.service))
  if (missing.length > 0) {
    problems.push(
      `${describeTargets(missing)} receive${missing.length === 1 ? 's' : ''} a rotated key in ${config.composeFile} but ${missing.length === 1 ? 'is' : 'are'} not deployed in stack "${config.stackName}" (its services: ${deployed.join(', ')}): the deploy would start ${missing.length === 1 ? 'it' : 'them'} rather than rotate what runs. Check stack-name and compose-file, or deploy the stack first`
    )
  }
  if (config.mode === 'immediate' && !deployed.includes(config.postgresService)) {
    problems.push(
      `postgres-service "${config.postgresService}" is not a service of stack "${config.stackName}" (its services: ${deployed.join(', ')}): the revoke runs in its task. Set postgres-service`
    )
  }
  return problems
}

/** Dry-run commands of the swarm steps. */
export function swarmCommands(
  c: Pick<
    Config,
    'stackName' | 'composeFile' | 'postgresService' | 'healthUrl' | 'revokeSql' | 'mode'
  >,
  targets: ServiceKeys[],
  postgres: { user: string; db: string }
): Record<string, string> {
  const pg = `<running task of ${c.stackName}_${c.postgresService}>`
  return {
    'swarm-prepare': `record the task template and update state of every service of stack ${c.stackName}${c.mode === 'immediate' ? `; docker exec ${pg} pg_isready` : ''}; start probing ${c.healthUrl} every 0.1 s`,
    deploy: `docker stack deploy --resolve-image never -c ${c.composeFile} ${c.stackName}, with the new values in its environment (sourced from .rotation/stack.env.new, 0600; never an argument): only the services whose definition changes roll: ${describeTargets(targets)}`,
    converge: `wait until each rolled service's update is completed (its update_config: order, monitor, failure_action); a paused or rolled-back update fails the step`,
    revoke: `docker exec -i ${pg} psql -v ON_ERROR_STOP=1 -U ${postgres.user} -d ${postgres.db} <<< ${JSON.stringify(c.revokeSql)} (after the new tasks run, so tokens the old ones issued go too)`
  }
}

export function swarmRollbackLine(): string {
  return 'on any failed step: restore the backup, docker stack deploy with the pre-rotation values (.rotation/stack.env.old), wait for the update, health check; then write the old values back to the CI secrets'
}

export function swarmRestartLine(stackName: string, targets: ServiceKeys[]): string {
  return `Host: target swarm, stack ${stackName}: ${targets.length} service(s) receive a rotated key and will roll (their update_config decides stop-first or start-first): ${describeTargets(targets)}; every other service keeps running`
}

/** `docker service logs` of every service of the stack, stamped, for the log scan. */
export function swarmLogsCommand(stackName: string): string {
  const stack = shellQuote(stackName)
  return `for s in $(docker stack services -q ${stack}); do docker service logs --no-task-ids --timestamps --tail 5000 "$s" 2>&1; done`
}

const SERVICE_LOG_LINE = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z) (\S+?)\s+\| ?(.*)$/

/**
 * `docker service logs --timestamps` prints "<stamp> <task>@<node> | <line>";
 * the log scan reads compose's "<service> | <stamp> <line>".
 */
export function composeStyleLogs(serviceLogs: string): string {
  return serviceLogs
    .split('\n')
    .map((line) => {
      const m = SERVICE_LOG_LINE.exec(line)
      return m ? `${m[2]} | ${m[1]} ${m[3]}` : line
    })
    .join('\n')
}

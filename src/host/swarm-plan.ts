// What the orchestrator asks of the host plan, whatever the target: the
// steps, the dry run's host lines and the restart line. target compose goes
// to the compose modules unchanged; target swarm to its own lines (pure).
import type { Config } from '../config.js'
import { hostPlanLines } from './dry-run.js'
import { backupStamp, envFilePath, shellQuote, type HostFacts, type HostMode } from './plan.js'
import type { HostState } from './sequence.js'
import { swarmCommands, swarmRestartLine, swarmRollbackLine, hostSteps } from './swarm.js'
import { restartLine } from './targeted-plan.js'
import type { ServiceKeys } from './targets.js'

export { hostSteps }

/** The host half of a dry run's plan. */
export function planLines(
  c: Config,
  mode: HostMode,
  state: HostState,
  rotatedAt: string
): string[] {
  if (c.target !== 'swarm') return hostPlanLines(c, mode, state, rotatedAt)
  const stamp = backupStamp(rotatedAt)
  const commands: Record<string, string> = {
    backup: `copy ${c.envFile} to ${c.envFile}.backup and ${c.envFile}.backup.${stamp} (0600, keep ${c.backupRetention})`,
    swap: `rename a copy of .rotation/env.new over ${state.facts.envReal ?? c.envFile}${state.facts.envLink ? ` (the target of the symlink ${c.envFile})` : ''} in its own directory (atomic, mode ${state.facts.envMode} and owner ${state.facts.envOwner} kept)`,
    health: `${state.facts.httpClient} ${c.healthUrl} until 2xx (${c.healthTimeoutSeconds} s)`,
    ...swarmCommands(c, state.targets, { user: state.postgresUser, db: state.postgresDb })
  }
  return [
    `stage the new .env as ${c.deployPath}/.rotation/env.new and the stack's variables as .rotation/stack.env.new and .rotation/stack.env.old (0600, SFTP)`,
    `start the host sequence detached (${state.detach}) under the lock ${c.deployPath}/.rotation/lock`,
    ...hostSteps(c, mode).map((step) => `host: ${step}: ${commands[step]}`),
    swarmRollbackLine()
  ]
}

/** The preflight's line on which services will restart. */
export function restartLineFor(c: Config, targets: ServiceKeys[]): string {
  return c.target === 'swarm'
    ? swarmRestartLine(c.stackName, targets)
    : restartLine(c.restart, targets)
}

/** The preflight's line on the host's engine. */
export function engineLine(c: Config, f: HostFacts): string {
  return c.target === 'swarm'
    ? `Host: docker stack on a Swarm manager, stack ${c.stackName} deployed from ${c.composeFile}`
    : `Host: ${f.composeCmd} (${f.composeVersion ?? '?'}), services: ${f.services.join(', ')}`
}

/** What to run by hand in deploy-path to start the services on the restored .env. */
export function manualStartCommand(
  c: Pick<Config, 'target' | 'composeFile' | 'envFile' | 'stackName' | 'deployPath'>,
  composeCommand: string
): string {
  if (c.target !== 'swarm')
    return `${composeCommand} -f ${c.composeFile} --env-file ${envFilePath(c)} up -d`
  return `set -a; . ${shellQuote(`./${c.envFile}`)}; set +a; docker stack deploy --resolve-image never -c ${c.composeFile} ${c.stackName}`
}

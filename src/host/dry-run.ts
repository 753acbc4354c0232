// The host half of a dry run's plan (pure): each step with the command it
// would run, from what preflight found on the host.
import type { Config } from '../config.js'
import { backupStamp, envFilePath, stepsFor, type HostMode } from './plan.js'
import type { HostState } from './sequence.js'
import { targetedCommands } from './targeted-plan.js'

export function hostPlanLines(
  c: Config,
  mode: HostMode,
  state: HostState,
  rotatedAt: string
): string[] {
  const compose = `${state.composeCommand} -f ${c.composeFile} --env-file ${envFilePath(c)}`
  const stamp = backupStamp(rotatedAt)
  const plan: string[] = []
  plan.push(`stage the new .env as ${c.deployPath}/.rotation/env.new (0600, SFTP)`)
  plan.push(
    `start the host sequence detached (${state.detach}) under the lock ${c.deployPath}/.rotation/lock`
  )
  const commands: Record<string, string> = {
    backup: `copy ${c.envFile} to ${c.envFile}.backup and ${c.envFile}.backup.${stamp} (0600, keep ${c.backupRetention})`,
    down: `${compose} down`,
    swap: `rename a copy of .rotation/env.new over ${state.facts.envReal ?? c.envFile}${state.facts.envLink ? ` (the target of the symlink ${c.envFile})` : ''} in its own directory (atomic, mode ${state.facts.envMode} and owner ${state.facts.envOwner} kept)`,
    'up-postgres': `${compose} up -d ${c.postgresService}`,
    'wait-postgres': `${compose} exec -T ${c.postgresService} pg_isready -U ${state.postgresUser} -d ${state.postgresDb}`,
    revoke: `${compose} exec -T ${c.postgresService} psql -v ON_ERROR_STOP=1 -U ${state.postgresUser} -d ${state.postgresDb} <<< ${JSON.stringify(c.revokeSql)}`,
    up: `${compose} up -d`,
    health: `${state.facts.httpClient} ${c.healthUrl} until 2xx (${c.healthTimeoutSeconds} s)`,
    'recover-restore': `restore the interrupted run's backup (${c.envFile}.backup.*, from its journal) over ${c.envFile}; keep ${c.envFile} when it made none`
  }
  const targets = state.targets.map((t) => t.service).join(' ')
  Object.assign(
    commands,
    targetedCommands(c, mode, compose, state.targets, {
      user: state.postgresUser,
      db: state.postgresDb
    })
  )
  for (const step of stepsFor(mode, c.restart)) plan.push(`host: ${step}: ${commands[step]}`)
  plan.push(
    `on any failed step: ${c.restart === 'targeted' && !c.recover ? `stop ${targets}, ` : ''}restore the backup, up -d, health check; then write the old values back to the CI secrets`
  )
  return plan
}

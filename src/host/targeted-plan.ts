// What restart: targeted tells people before it acts (pure): the preflight
// line naming the services that will restart and why, and the dry-run plan's
// commands for the targeted steps.
import type { Config } from '../config.js'
import type { HostMode } from './plan.js'
import { describeTargets, type ServiceKeys } from './targets.js'

export function restartLine(restart: Config['restart'], targets: ServiceKeys[]): string {
  return restart === 'targeted'
    ? `Host: restart targeted: ${targets.length} service(s) receive a rotated key and will restart: ${describeTargets(targets)}; every other service keeps running`
    : `Host: restart all (down / up of every service); the services that receive a rotated key: ${describeTargets(targets)}`
}

/** Dry-run commands of the targeted steps, overriding the runbook's where they differ. */
export function targetedCommands(
  c: Pick<Config, 'restart' | 'postgresService' | 'healthUrl' | 'revokeSql'>,
  mode: HostMode,
  compose: string,
  targets: ServiceKeys[],
  postgres: { user: string; db: string }
): Record<string, string> {
  if (c.restart !== 'targeted' || mode === 'recover') return {}
  const names = targets.map((t) => t.service).join(' ')
  const commands: Record<string, string> = {
    prepare: `record the containers of every service${mode === 'immediate' ? `; docker exec <${c.postgresService} container> pg_isready` : ''}; start probing ${c.healthUrl} every 0.1 s`,
    stop: `${compose} stop ${names} (the services that receive a rotated key: ${describeTargets(targets)})`,
    up: `${compose} up -d ${names} (nothing else is recreated)`
  }
  if (mode === 'immediate') {
    commands.revoke = `docker exec -i <${c.postgresService} container> psql -v ON_ERROR_STOP=1 -U ${postgres.user} -d ${postgres.db} <<< ${JSON.stringify(c.revokeSql)} (${c.postgresService} keeps running)`
  }
  return commands
}

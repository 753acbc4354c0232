// The preflight's database trial: the revoke SQL in a transaction that is
// rolled back, run by the host script (`dbcheck` in the compose postgres
// container, `swarm-dbcheck` in the database task's), so a wrong user,
// database or a typo in revoke-sql is found before anything stops.
import type { Config } from '../config.js'
import type { HostSession } from './ssh.js'

export type DatabaseTrial = { problems: string[]; database?: { user: string; db: string } }

type Script = (command: string, extra?: Record<string, string | number>) => Promise<string>

export async function trialRevoke(
  session: HostSession,
  c: Pick<Config, 'deployPath' | 'revokeSql' | 'postgresService' | 'postgresUser' | 'postgresDb'>,
  run: { script: Script; command: string; extra?: Record<string, string>; where: string },
  redact: (text: string) => string
): Promise<DatabaseTrial> {
  const sql = `BEGIN;\nSET LOCAL statement_timeout = '15s';\nSET LOCAL lock_timeout = '5s';\n${c.revokeSql}\nROLLBACK;\n`
  await session.writeFiles([
    { path: `${c.deployPath}/.rotation/revoke-check.sql`, data: sql, mode: 0o600 }
  ])
  const out = await run.script(run.command, {
    ...run.extra,
    POSTGRES_SERVICE: c.postgresService,
    POSTGRES_USER: c.postgresUser,
    POSTGRES_DB: c.postgresDb
  })
  const field = (name: string) => new RegExp(`^${name}=(.*)$`, 'm').exec(out)?.[1]
  const user = field('db_user') ?? '?'
  const db = field('db_name') ?? '?'
  if (field('db') === 'ok') return { problems: [], database: { user, db } }
  return {
    problems: [
      `the revoke SQL failed in a trial run (rolled back) against database "${db}" as user "${user}" in ${run.where}: ${redact(field('db_error') ?? 'no answer')}. Nothing was changed: fix postgres-user, postgres-db or revoke-sql`
    ]
  }
}

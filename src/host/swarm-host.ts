// target: swarm, the preflight's I/O: reads the stack file from the host,
// finds the services that receive a rotated key, checks them against the
// deployed stack, and tries the revoke SQL in the database task (rolled back).
import type { Config } from '../config.js'
import { trialRevoke } from './db-trial.js'
import type { HostMode } from './plan.js'
import type { HostSession } from './ssh.js'
import { readStackFile, swarmTargetProblems, type StackFile, type SwarmFacts } from './swarm.js'
import type { ServiceKeys } from './targets.js'

export interface SwarmInspection {
  problems: string[]
  targets: ServiceKeys[]
  /** Variables the stack file uses: the ones staged for docker stack deploy. */
  variables: string[]
  database?: { user: string; db: string }
}

type Script = (command: string, extra?: Record<string, string | number>) => Promise<string>

export async function inspectSwarm(
  session: HostSession,
  config: Config,
  swarm: SwarmFacts,
  rotatedKeys: string[],
  mode: HostMode,
  script: Script,
  redact: (text: string) => string
): Promise<SwarmInspection> {
  const c = config
  const path = `${c.deployPath}/${c.composeFile}`
  let stack: StackFile
  try {
    const yaml = (await session.readFile(path)).toString('utf8')
    stack = readStackFile(yaml, {
      rotatedKeys,
      composeFile: c.composeFile,
      envFile: c.envFile
    })
  } catch (error) {
    return {
      problems: [
        `the stack file ${path} cannot be read as a compose file: ${redact((error as Error).message)}. Nothing was changed: fix compose-file`
      ],
      targets: [],
      variables: []
    }
  }
  const problems = swarmTargetProblems(stack, swarm.stackServices, {
    mode: c.mode,
    gracefulServices: c.gracefulServices,
    postgresService: c.postgresService,
    composeFile: c.composeFile,
    envFile: c.envFile,
    stackName: c.stackName,
    rotatedKeys
  })
  let database: { user: string; db: string } | undefined
  if (mode === 'immediate' && swarm.stackServices.includes(c.postgresService)) {
    const check = await trialRevoke(
      session,
      c,
      {
        script,
        command: 'swarm-dbcheck',
        where: `the task of ${c.stackName}_${c.postgresService}`
      },
      redact
    )
    problems.push(...check.problems)
    database = check.database
  }
  return { problems, targets: stack.targets, variables: stack.variables, database }
}

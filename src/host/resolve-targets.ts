// Finds the services that receive a rotated key on the host: stages the
// compose file without env_file entries and a marker .env (never a real
// secret) in .rotation/, lets the host's compose CLI resolve them, and reads
// the answer with src/host/targets.ts.
import type { Config } from '../config.js'
import type { HostSession } from './ssh.js'
import {
  findTargets,
  markerEnv,
  targetProblems,
  withoutEnvFiles,
  type ServiceKeys
} from './targets.js'

export interface ResolvedTargets {
  targets: ServiceKeys[]
  services: string[]
  problems: string[]
}

export async function resolveTargets(
  session: HostSession,
  config: Config,
  envText: string,
  rotatedKeys: string[],
  script: (command: string, extra?: Record<string, string | number>) => Promise<string>
): Promise<ResolvedTargets> {
  const c = config
  const raw = (await session.readFile(`${c.deployPath}/${c.composeFile}`)).toString('utf8')
  const markers = markerEnv(envText, rotatedKeys)
  const dir = `${c.deployPath}/.rotation`
  await session.writeFiles([
    { path: `${dir}/targets.yml`, data: withoutEnvFiles(raw), mode: 0o600 },
    { path: `${dir}/targets.env`, data: Buffer.from(markers.text, 'latin1'), mode: 0o600 }
  ])
  let out: string
  try {
    out = await script('resolve')
  } catch (error) {
    return {
      targets: [],
      services: [],
      problems: [
        `could not resolve ${c.composeFile} with compose config to find the services that receive ${rotatedKeys.join(', ')}: ${(error as Error).message}`
      ]
    }
  }
  const firstLine = out.indexOf('\n')
  const dockerCli = out.slice(0, firstLine).trim() === 'docker_cli=yes'
  const found = findTargets(out.slice(firstLine + 1), raw, {
    rotatedKeys,
    keyOf: markers.keyOf,
    composeFile: c.composeFile,
    envFile: c.envFile
  })
  const problems = targetProblems(found, {
    mode: c.mode,
    restart: c.restart,
    gracefulServices: c.gracefulServices,
    postgresService: c.postgresService,
    composeFile: c.composeFile,
    envFile: c.envFile,
    rotatedKeys
  })
  if (c.restart === 'targeted' && !dockerCli) {
    problems.push(
      'restart: targeted needs the docker CLI on the host (revoke and container checks go through docker exec / inspect): install it, or use restart: all'
    )
  }
  return { targets: found.targets, services: found.services, problems }
}

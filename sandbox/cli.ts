// Explore the sandbox by hand:
//   npx tsx sandbox/cli.ts up [--work-dir DIR] [--single-secret]   start it, print how to reach it
//   npx tsx sandbox/cli.ts down [--work-dir DIR]                   tear it down
// The sandbox keeps running between the two (its state is in DIR/sandbox-state.json).

import os from 'node:os'
import path from 'node:path'
import { startSandbox, stopSandboxAt } from './index.js'

const args = process.argv.slice(2)
const command = args[0]
const flag = (name: string) => args.includes(name)
const option = (name: string) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : undefined
}
const workDir = path.resolve(option('--work-dir') ?? path.join(os.tmpdir(), 'cloudbox-sandbox'))
const log = (line: string) => console.error(line)

async function main() {
  switch (command) {
    case 'up': {
      const t0 = Date.now()
      const sb = await startSandbox({
        workDir,
        keep: true,
        log,
        previousSecrets: !flag('--single-secret')
      })
      const ssh = `ssh -F /dev/null -i ${sb.ssh.privateKeyPath} -p ${sb.ssh.port} -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${sb.ssh.knownHostsPath} ${sb.ssh.user}@${sb.ssh.host}`
      console.log(
        [
          `CloudBox sandbox up in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
          `  workDir          ${sb.workDir}`,
          `  DOCKER_HOST      ${sb.dockerHost}`,
          `  deploy path      ${sb.deployPath} (${sb.composeFile}, .env)`,
          `  compose wrapper  ${sb.composeWrapper} (faults: ${path.join(path.dirname(sb.composeWrapper), 'compose-faults')})`,
          `  ssh              ${ssh}`,
          `  known_hosts      ${sb.ssh.knownHosts}`,
          `  fingerprint      ${sb.ssh.fingerprint}`,
          `  app              ${sb.urls.health}`,
          `  postgres         127.0.0.1:${sb.postgresPort}`,
          `  admin            ${sb.admin.email} / ${sb.admin.password}`,
          `  user             ${sb.user.email} / ${sb.user.password}`,
          '',
          'Try:',
          `  ${ssh} 'cd ${sb.deployPath} && docker-compose -f ${sb.composeFile} ps'`,
          `  curl -s -X POST -H 'Content-Type: application/json' -d '${JSON.stringify(sb.admin)}' ${sb.urls.login}`,
          `  npx tsx sandbox/cli.ts down${option('--work-dir') ? ` --work-dir ${workDir}` : ''}`
        ].join('\n')
      )
      return
    }
    case 'down':
      if (!stopSandboxAt(workDir, log)) console.error(`no sandbox in ${workDir}`)
      return
    default:
      console.error('usage: npx tsx sandbox/cli.ts up|down [--work-dir DIR] [--single-secret]')
      process.exitCode = 2
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err)
  process.exitCode = 1
})

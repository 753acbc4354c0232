// The demo: a full rotation of the sandbox CloudBox deployment by the bundled
// action, shown live, then the issue and summary it produced and proof that
// it took effect.
import { startSandbox } from './index.js'
import {
  ENVIRONMENTS,
  runAction,
  sandboxInputs,
  seedCiSecretsFromHost,
  startSandboxGitHub
} from './run-action.js'

const keep = process.argv.includes('--keep')
const say = (text: string): void => {
  process.stdout.write(`\n\x1b[1m== ${text}\x1b[0m\n`)
}

say('Starting the sandbox: dockerd, sshd, PostgreSQL, the CloudBox stand-in, a GitHub API stand-in')
const started = Date.now()
const sandbox = await startSandbox({ keep, log: (line) => process.stdout.write(`   ${line}\n`) })
const github = await startSandboxGitHub()
await seedCiSecretsFromHost(github, sandbox)
process.stdout.write(`   ready in ${((Date.now() - started) / 1000).toFixed(1)} s\n`)

let exitCode = 1
try {
  say('A user logs in before the rotation')
  const before = await sandbox.http('POST', '/api/auth/login', { body: sandbox.user })
  const oldAccess = before.body.accessToken as string
  const oldCookie = (before.setCookie ?? [])
    .find((c) => c.startsWith('refreshToken='))
    ?.split(';')[0]
  process.stdout.write(`   POST /api/auth/login → ${before.status}\n`)

  say('Running the action (dist/index.js) as a runner would')
  const run = await runAction(sandboxInputs(sandbox), {
    githubUrl: github.url,
    onStdout: (text) =>
      process.stdout.write(
        text
          .split('\n')
          .filter((line) => !line.startsWith('::add-mask::'))
          .map((line) => (line === '' ? line : `   ${line}`))
          .join('\n')
      )
  })
  process.stdout.write(`\n   exit code ${run.code}; outputs:\n`)
  for (const [name, value] of Object.entries(run.outputs))
    process.stdout.write(`     ${name} = ${value}\n`)

  const issue = github.issues.at(-1)
  say(`The issue it opened: ${issue ? `#${issue.number} "${issue.title}"` : 'none'}`)
  if (issue) process.stdout.write(`${issue.body}\n`)
  say('The job summary it wrote')
  process.stdout.write(`${run.summary}\n`)

  say('Proof')
  const me = await sandbox.http('GET', '/api/users/me', { token: oldAccess })
  process.stdout.write(`   old access token  → GET /api/users/me: ${me.status} (expected 401)\n`)
  const refresh = await sandbox.http('POST', '/api/auth/refresh', { cookie: oldCookie })
  process.stdout.write(
    `   old refresh token → POST /api/auth/refresh: ${refresh.status} (expected 401)\n`
  )
  const after = await sandbox.http('POST', '/api/auth/login', { body: sandbox.user })
  process.stdout.write(
    `   new login         → POST /api/auth/login: ${after.status} (expected 200)\n`
  )
  const scopes = ['repository', ...ENVIRONMENTS.map((e) => `environment:${e}`)]
  for (const scope of scopes) {
    process.stdout.write(
      `   CI secrets in ${scope}: ${[...github.secrets(scope).keys()].join(', ')} (opened by the stand-in with that scope's private key)\n`
    )
  }
  const ok =
    run.outputs.result === 'success' &&
    me.status === 401 &&
    refresh.status === 401 &&
    after.status === 200
  say(ok ? 'Demo succeeded' : 'Demo FAILED')
  exitCode = ok ? 0 : 1
  if (keep) {
    process.stdout.write(
      `   The sandbox stays up (--keep). Explore:\n     ssh -i ${sandbox.ssh.privateKeyPath} -o UserKnownHostsFile=${sandbox.ssh.knownHostsPath} -p ${sandbox.ssh.port} ${sandbox.ssh.user}@127.0.0.1\n     cd ${sandbox.deployPath} && docker-compose -f ${sandbox.composeFile} ps\n   Stop it with: npx tsx sandbox/cli.ts down --work-dir ${sandbox.workDir}\n`
    )
  }
} finally {
  await github.stop()
  if (!keep) await sandbox.stop()
}
process.exit(exitCode)

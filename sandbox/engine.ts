// The Docker engine: a private dockerd (no bridge, no iptables) on its own
// socket and data root, the tiny rootfs image with the host's /usr mounted
// read-only, and what the engine says about containers.

import { spawn, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import http from 'node:http'
import path from 'node:path'
import { HttpResponse, PROJECT, SYSTEM_DIRS, State, writeState } from './common.js'
import { alive, killTree, mustRun, waitFor } from './process.js'
import { mountsUnder } from './teardown.js'

export function dockerApi(
  socketPath: string,
  method: string,
  apiPath: string
): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path: apiPath, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let body: unknown = text
        try {
          body = JSON.parse(text)
        } catch {
          /* plain text */
        }
        resolve({ status: res.statusCode ?? 0, body })
      })
    })
    req.setTimeout(10000, () => req.destroy(new Error(`docker API ${method} ${apiPath} timed out`)))
    req.on('error', reject)
    req.end()
  })
}

export function socketOf(dockerHost: string): string {
  if (!dockerHost.startsWith('unix://')) {
    throw new Error(`only unix:// docker hosts are supported, got ${dockerHost}`)
  }
  return dockerHost.slice('unix://'.length)
}

/** /bin, /lib, /lib64 are symlinks into /usr on merged-/usr hosts (copied as such into the image); real directories are mounted. */
export function hostDirsToMount(): string[] {
  return ['/bin', '/lib', '/lib64'].filter(
    (d) => fs.existsSync(d) && !fs.lstatSync(d).isSymbolicLink()
  )
}

/** The tiny base image: users, groups, mount points; binaries come from the host's /usr. */
export async function buildRootfsTar(dir: string, tarPath: string) {
  const mk = async (p: string, mode = 0o755, uid = 0, gid = 0) => {
    const full = path.join(dir, p)
    await fsp.mkdir(full, { recursive: true })
    await fsp.chmod(full, mode)
    await fsp.chown(full, uid, gid)
  }
  for (const d of [
    'etc',
    'usr',
    'proc',
    'sys',
    'dev',
    'root',
    'sbin',
    'app/src',
    'app/node_modules',
    'sandbox-faults',
    'var/lib',
    'run'
  ]) {
    await mk(d)
  }
  await mk('tmp', 0o1777)
  await mk('var/tmp', 0o1777)
  await mk('home/cloudbox', 0o755, 1001, 1001)
  await mk('var/run/postgresql', 0o2775, 70, 70)
  await mk('var/lib/postgresql', 0o755, 70, 70)
  await mk('var/lib/postgresql/data', 0o700, 70, 70)
  for (const d of ['bin', 'lib', 'lib64']) {
    const st = await fsp.lstat(`/${d}`).catch(() => undefined)
    if (st?.isSymbolicLink()) await fsp.symlink(await fsp.readlink(`/${d}`), path.join(dir, d))
    else if (st) await mk(d)
  }
  const files: Record<string, string> = {
    'etc/passwd': [
      'root:x:0:0:root:/root:/bin/sh',
      'postgres:x:70:70:PostgreSQL:/var/lib/postgresql:/bin/sh',
      'cloudbox:x:1001:1001:CloudBox:/home/cloudbox:/bin/sh',
      'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
      ''
    ].join('\n'),
    'etc/group': ['root:x:0:', 'postgres:x:70:', 'cloudbox:x:1001:', 'nogroup:x:65534:', ''].join(
      '\n'
    ),
    'etc/nsswitch.conf': 'passwd: files\ngroup: files\nhosts: files dns\n',
    'etc/ld.so.cache': '',
    'etc/hostname': 'cloudbox\n'
  }
  for (const [p, content] of Object.entries(files)) await fsp.writeFile(path.join(dir, p), content)
  await mustRun('tar', ['--numeric-owner', '-C', dir, '-cf', tarPath, '.'])
}

export async function startDockerd(state: State, log: (line: string) => void) {
  const d = path.join(state.workDir, 'd')
  const sock = path.join(d, 'docker.sock')
  if (path.join(d, 'exec', 'containerd', 'containerd.sock.ttrpc').length > 100) {
    throw new Error(
      `workDir ${state.workDir} is too long for the engine's unix sockets; use a shorter one`
    )
  }
  for (const dir of SYSTEM_DIRS.docker) if (!fs.existsSync(dir)) state.createdSystemDirs.push(dir)
  await fsp.writeFile(path.join(d, 'daemon.json'), '{}\n')
  let lastLog = ''
  for (const driver of [undefined, 'vfs']) {
    const args = [
      '--host',
      `unix://${sock}`,
      '--data-root',
      path.join(d, 'data'),
      '--exec-root',
      path.join(d, 'exec'),
      '--pidfile',
      path.join(d, 'docker.pid'),
      '--config-file',
      path.join(d, 'daemon.json'),
      '--bridge=none',
      '--iptables=false',
      '--ip6tables=false',
      '--ip-masq=false',
      '--log-level=warn',
      ...(driver ? [`--storage-driver=${driver}`] : [])
    ]
    const logFile = path.join(d, 'dockerd.log')
    const fd = fs.openSync(logFile, 'a')
    const child = spawn('dockerd', args, { detached: true, stdio: ['ignore', fd, fd] })
    child.on('error', () => {})
    child.unref()
    fs.closeSync(fd)
    state.dockerdPid = child.pid
    writeState(state)
    try {
      await waitFor(
        'dockerd',
        async () => {
          if (!alive(child.pid)) throw new Error('dockerd exited')
          const r = await dockerApi(sock, 'GET', '/_ping')
          return r.status === 200 ? true : undefined
        },
        30000
      )
      log(`sandbox: dockerd up (pid ${child.pid}${driver ? `, ${driver}` : ''})`)
      return
    } catch (err) {
      lastLog = fs.readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n')
      log(`sandbox: dockerd${driver ? ` (${driver})` : ''} failed: ${(err as Error).message}`)
      killTree(child.pid, 5000)
      for (const m of mountsUnder(d)) spawnSync('umount', ['-l', m], { stdio: 'ignore' })
      fs.rmSync(path.join(d, 'data'), { recursive: true, force: true })
    }
  }
  throw new Error(`could not start dockerd; last log lines:\n${lastLog}`)
}

export interface ContainerInfo {
  service: string
  state: string
  status: string
  configHash: string
}

export async function listContainers(state: State): Promise<ContainerInfo[]> {
  const filters = encodeURIComponent(
    // One-off containers (`docker-compose run`) are not services.
    JSON.stringify({
      label: [`com.docker.compose.project=${PROJECT}`, 'com.docker.compose.oneoff=False']
    })
  )
  const r = await dockerApi(
    socketOf(state.dockerHost),
    'GET',
    `/containers/json?all=1&filters=${filters}`
  )
  if (r.status !== 200) throw new Error(`docker API: ${r.status} ${JSON.stringify(r.body)}`)
  return (r.body as Array<{ Labels: Record<string, string>; State: string; Status: string }>).map(
    (c) => ({
      service: c.Labels['com.docker.compose.service'],
      state: c.State,
      status: c.Status,
      configHash: c.Labels['com.docker.compose.config-hash']
    })
  )
}

export async function configHashes(state: State): Promise<Record<string, string>> {
  return Object.fromEntries((await listContainers(state)).map((c) => [c.service, c.configHash]))
}

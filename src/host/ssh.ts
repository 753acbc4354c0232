// The SSH session to the production host: pinned host key, exec with stdin,
// SFTP writes with an explicit mode and atomic rename, forwarded channels.
import { NodeSSH } from 'node-ssh'
import type { ClientChannel, SFTPWrapper } from 'ssh2'
import type { Config } from '../config.js'
import { hostKeyAlgorithmsFor, pinnedKeysFor, verifyHostKey } from './hostkey.js'

export interface ExecResult {
  code: number | null
  signal: string | null
  stdout: string
  stderr: string
}

export interface ExecOptions {
  stdin?: string
  onStdout?: (chunk: string) => void
  signal?: AbortSignal
}

export class SshError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'SshError'
  }
}

export class HostSession {
  private closedReason: string | undefined

  private constructor(
    private readonly ssh: NodeSSH,
    readonly target: string,
    readonly hostFingerprint: string
  ) {
    // Without our own listeners an error after `ready` would crash the process.
    ssh.connection?.on('error', (error: Error) => {
      this.closedReason = `connection error: ${error.message}`
    })
    ssh.connection?.on('close', () => {
      this.closedReason ??= 'connection closed'
    })
  }

  static async connect(ssh: Config['ssh']): Promise<HostSession> {
    const target = `${ssh.user}@${ssh.host}:${ssh.port}`
    const pinned = pinnedKeysFor(ssh.hostKey, ssh.host, ssh.port)
    let presentedFingerprint = ''
    let mismatch: string | undefined
    const client = new NodeSSH()
    try {
      await client.connect({
        host: ssh.host,
        port: ssh.port,
        username: ssh.user,
        privateKey: ssh.privateKey,
        passphrase: ssh.passphrase,
        readyTimeout: ssh.timeoutSeconds * 1000,
        keepaliveInterval: 10000,
        keepaliveCountMax: 6,
        tryKeyboard: false,
        agent: undefined,
        algorithms:
          pinned.keyTypes.length > 0
            ? { serverHostKey: hostKeyAlgorithmsFor(pinned.keyTypes) as never }
            : undefined,
        hostVerifier: (key: Buffer) => {
          const verdict = verifyHostKey(ssh.hostKey, ssh.host, ssh.port, key)
          if (verdict.ok) {
            presentedFingerprint = verdict.fingerprint
            return true
          }
          mismatch = verdict.reason
          return false
        }
      })
    } catch (error) {
      client.dispose()
      if (mismatch !== undefined) throw new SshError(`${target}: ${mismatch}`)
      throw new SshError(`cannot connect to ${target}: ${describeConnectError(error)}`)
    }
    return new HostSession(client, target, presentedFingerprint)
  }

  private alive(): void {
    if (this.closedReason !== undefined || !this.ssh.isConnected()) {
      throw new SshError(`SSH to ${this.target} lost (${this.closedReason ?? 'not connected'})`)
    }
  }

  /** Runs a command; an exit code of null (killed, connection lost) is a failure for the caller. */
  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    this.alive()
    const result = await this.ssh.execCommand(command, {
      stdin: options.stdin,
      onStdout: options.onStdout
        ? (chunk) => options.onStdout?.(chunk.toString('utf8'))
        : undefined,
      onChannel: options.signal
        ? (channel: ClientChannel) => {
            const stop = (): void => {
              channel.close()
            }
            if (options.signal?.aborted) stop()
            options.signal?.addEventListener('abort', stop, { once: true })
            channel.on('close', () => options.signal?.removeEventListener('abort', stop))
          }
        : undefined
    })
    return {
      code: result.code,
      signal: result.signal,
      stdout: result.stdout,
      stderr: result.stderr
    }
  }

  private async sftp(): Promise<SFTPWrapper> {
    this.alive()
    return this.ssh.requestSFTP()
  }

  async readFile(path: string): Promise<Buffer> {
    const sftp = await this.sftp()
    try {
      return await new Promise<Buffer>((resolve, reject) =>
        sftp.readFile(path, (error: Error | undefined, data: Buffer) =>
          error ? reject(error) : resolve(data)
        )
      )
    } finally {
      sftp.end()
    }
  }

  /**
   * Writes files in one SFTP session. Each is created with its `mode` under a
   * temporary name (never wider for a moment), then renamed over its path with
   * posix-rename@openssh.com (a plain SFTP rename fails when the target exists).
   */
  async writeFiles(
    files: Array<{ path: string; data: Buffer | string; mode: number }>
  ): Promise<void> {
    const sftp = await this.sftp()
    try {
      for (const file of files) await writeOne(sftp, file.path, file.data, file.mode, this.target)
    } finally {
      sftp.end()
    }
  }

  /** A TCP channel opened by the host to host:port (an SSH direct-tcpip forward). */
  async forward(host: string, port: number): Promise<ClientChannel> {
    this.alive()
    const connection = this.ssh.connection
    if (!connection) throw new SshError(`SSH to ${this.target} is not connected`)
    return new Promise<ClientChannel>((resolve, reject) =>
      connection.forwardOut('127.0.0.1', 0, host, port, (error, channel) =>
        error
          ? reject(
              Object.assign(
                new SshError(
                  `cannot open a forwarded channel to ${host}:${port}: ${error.message}`
                ),
                // SSH_OPEN_* reason: 1 administratively prohibited (AllowTcpForwarding), 2 connect failed.
                { openFailure: (error as Error & { reason?: unknown }).reason }
              )
            )
          : resolve(channel)
      )
    )
  }

  get isConnected(): boolean {
    return this.closedReason === undefined && this.ssh.isConnected()
  }

  close(): void {
    this.ssh.dispose()
  }
}

function describeConnectError(error: unknown): string {
  const e = error as { level?: string; code?: string; message?: string }
  if (e.level === 'client-authentication') {
    return 'authentication failed: the server refused the private key (check ssh-user and ssh-private-key)'
  }
  if (e.code === 'ECONNREFUSED') return 'connection refused (is sshd listening on that port?)'
  if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return 'host name does not resolve'
  if (e.code === 'ETIMEDOUT' || /Timed out/i.test(e.message ?? '')) {
    return 'timed out (see ssh-timeout)'
  }
  if (
    /Cannot parse privateKey|Encrypted private key detected|bad passphrase/i.test(e.message ?? '')
  ) {
    return `the private key cannot be used: ${e.message} (check ssh-private-key and ssh-passphrase)`
  }
  return e.message ?? String(error)
}

async function writeOne(
  sftp: SFTPWrapper,
  path: string,
  data: Buffer | string,
  mode: number,
  target: string
): Promise<void> {
  const temporary = `${path}.part-${process.pid}-${Date.now()}`
  const buffer = Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8')
  try {
    await new Promise<void>((resolve, reject) => {
      sftp.open(temporary, 'wx', { mode }, (openError, handle) => {
        if (openError) return reject(openError)
        const finish = (error?: Error | null): void => {
          sftp.close(handle, (closeError) => {
            const failure = error ?? closeError
            if (failure) reject(failure)
            else resolve()
          })
        }
        sftp.fchmod(handle, mode, (chmodError) => {
          if (chmodError) return finish(chmodError)
          if (buffer.length === 0) return finish()
          sftp.write(handle, buffer, 0, buffer.length, 0, (writeError) => finish(writeError))
        })
      })
    })
    await new Promise<void>((resolve, reject) =>
      sftp.ext_openssh_rename(temporary, path, (error) => (error ? reject(error) : resolve()))
    )
  } catch (error) {
    await new Promise<void>((resolve) => sftp.unlink(temporary, () => resolve()))
    throw new SshError(`cannot write ${path} on ${target}: ${(error as Error).message}`)
  }
}

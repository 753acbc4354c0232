// HTTP requests made from the host's side of the SSH connection (a
// direct-tcpip channel), so URLs like http://localhost:3001 work from the
// runner and credentials never appear on any host command line.
import http from 'node:http'
import https from 'node:https'
import tls from 'node:tls'
import type { Duplex } from 'node:stream'
import type { HostSession } from '../host/ssh.js'

export interface TunnelResponse {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
}

export async function requestThroughTunnel(
  session: HostSession,
  url: string,
  options: { method?: string; json?: unknown; bearer?: string; timeoutMs?: number } = {}
): Promise<TunnelResponse> {
  const target = new URL(url)
  const secure = target.protocol === 'https:'
  const port = Number(target.port || (secure ? 443 : 80))
  const host = target.hostname.replace(/^\[|\]$/g, '')
  const channel = (await session.forward(host, port)) as unknown as Duplex
  const socket: Duplex = secure ? tls.connect({ socket: channel, servername: host }) : channel
  const body = options.json === undefined ? undefined : JSON.stringify(options.json)
  const headers: http.OutgoingHttpHeaders = { accept: 'application/json', connection: 'close' }
  if (body !== undefined) {
    headers['content-type'] = 'application/json'
    headers['content-length'] = Buffer.byteLength(body)
  }
  if (options.bearer) headers.authorization = `Bearer ${options.bearer}`
  const transport = secure ? https : http
  return new Promise<TunnelResponse>((resolve, reject) => {
    const request = transport.request(
      {
        method: options.method ?? 'GET',
        host: target.hostname,
        port,
        path: `${target.pathname}${target.search}`,
        headers,
        agent: false,
        createConnection: () => socket as never,
        timeout: options.timeoutMs ?? 15000
      },
      (response) => {
        const chunks: Buffer[] = []
        response.on('data', (chunk: Buffer) => chunks.push(chunk))
        response.on('end', () => {
          socket.destroy()
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body: Buffer.concat(chunks).toString('utf8')
          })
        })
        response.on('error', reject)
      }
    )
    request.on('timeout', () =>
      request.destroy(new Error(`no answer from ${url} within the timeout`))
    )
    request.on('error', (error) => {
      socket.destroy()
      reject(error)
    })
    request.end(body)
  })
}

/**
 * Whether sshd lets this user open forwarded channels (AllowTcpForwarding):
 * the verification checks go through one. Undefined when it does, else why not.
 */
export async function forwardingRefusal(
  session: HostSession,
  url: string
): Promise<string | undefined> {
  const target = new URL(url)
  const port = Number(target.port || (target.protocol === 'https:' ? 443 : 80))
  const host = target.hostname.replace(/^\[|\]$/g, '')
  try {
    const channel = await session.forward(host, port)
    channel.destroy()
    return undefined
  } catch (error) {
    // Connect failed means sshd tried: forwarding itself is allowed.
    if ((error as { openFailure?: unknown }).openFailure === 2) return undefined
    if ((error as { openFailure?: unknown }).openFailure === 1) {
      return `sshd refuses forwarded channels for this user (AllowTcpForwarding no, or a "restrict"/"no-port-forwarding" key option): ${(error as Error).message}`
    }
    return `opening a forwarded channel to ${host}:${port} failed: ${(error as Error).message}`
  }
}

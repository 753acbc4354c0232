// The stand-in's secret scopes: the repository and each environment, each with
// a real libsodium key pair. Every PUT is opened with the scope's private key
// (a value sealed with another scope's key is refused, as GitHub refuses it).
import { randomInt } from 'node:crypto'
import sodium from 'libsodium-wrappers'
import { error, notFound, now, type Answer, type Handler, type Pager } from './http.js'
import type { Route } from './openapi.js'

export interface Scope {
  label: string
  keyId: string
  publicKey: Uint8Array
  privateKey: Uint8Array
  secrets: Map<string, { value: string; createdAt: string; updatedAt: string }>
}

/** Call after `await sodium.ready`. */
export class SecretScopes {
  private readonly scopes = new Map<string, Scope>()
  readonly writes: Array<{ scope: string; name: string; at: number }> = []

  /** A new scope ('repository' or 'environment:NAME') with its own key pair. */
  add(label: string): void {
    const pair = sodium.crypto_box_keypair()
    let keyId: string
    do keyId = String(randomInt(1e9, 2 ** 47)) + String(randomInt(1e5, 1e6))
    while ([...this.scopes.values()].some((s) => s.keyId === keyId))
    this.scopes.set(label, {
      label,
      keyId,
      publicKey: pair.publicKey,
      privateKey: pair.privateKey,
      secrets: new Map()
    })
  }

  labels(): string[] {
    return [...this.scopes.keys()]
  }

  remove(label: string): void {
    this.scopes.delete(label)
  }

  clearAll(): void {
    for (const scope of this.scopes.values()) scope.secrets.clear()
  }

  named(label: string): Scope {
    const scope = this.scopes.get(label)
    if (scope === undefined) throw new Error(`the stand-in has no scope ${label}`)
    return scope
  }

  publicKey(label: string): string {
    return sodium.to_base64(this.named(label).publicKey, sodium.base64_variants.ORIGINAL)
  }

  /**
   * A scope's secrets as name → value. set(), delete() and clear() write
   * through, so a test can seed the values a team would hold (not an API
   * write: `writes` is left alone).
   */
  view(label: string): Map<string, string> {
    const scope = this.named(label)
    const view = new Map([...scope.secrets].map(([n, s]) => [n, s.value]))
    Object.defineProperty(view, 'set', {
      enumerable: false,
      value: (name: string, value: string) => {
        const existing = scope.secrets.get(name)
        const t = now()
        scope.secrets.set(name, { value, createdAt: existing?.createdAt ?? t, updatedAt: t })
        return Map.prototype.set.call(view, name, value)
      }
    })
    Object.defineProperty(view, 'delete', {
      enumerable: false,
      value: (name: string) => scope.secrets.delete(name) && Map.prototype.delete.call(view, name)
    })
    Object.defineProperty(view, 'clear', {
      enumerable: false,
      value: () => {
        scope.secrets.clear()
        Map.prototype.clear.call(view)
      }
    })
    return view
  }

  /** The scope a route addresses (404 for an unknown environment). */
  private of(route: Route): Scope {
    const env = route.params.environment_name
    const scope = this.scopes.get(env === undefined ? 'repository' : `environment:${env}`)
    if (scope === undefined) throw notFound()
    return scope
  }

  handlers(page: Pager): Record<string, Handler> {
    const publicKey: Handler = (route) => {
      const scope = this.of(route)
      return {
        status: 200,
        body: {
          key_id: scope.keyId,
          key: sodium.to_base64(scope.publicKey, sodium.base64_variants.ORIGINAL)
        }
      }
    }
    const list: Handler = (route, _body, request) => {
      const all = [...this.of(route).secrets].map(([name, s]) => ({
        name,
        created_at: s.createdAt,
        updated_at: s.updatedAt
      }))
      return page(request, all, 'secrets')
    }
    const get: Handler = (route) => {
      const name = route.params.secret_name.toUpperCase()
      const s = this.of(route).secrets.get(name)
      if (s === undefined) throw notFound()
      return { status: 200, body: { name, created_at: s.createdAt, updated_at: s.updatedAt } }
    }
    const remove: Handler = (route) => {
      if (!this.of(route).secrets.delete(route.params.secret_name.toUpperCase())) throw notFound()
      return { status: 204 }
    }
    const put: Handler = (route, body) => this.put(route, body)
    const repo = '/repos/{owner}/{repo}/actions/secrets'
    const env = '/repos/{owner}/{repo}/environments/{environment_name}/secrets'
    return {
      [`GET ${repo}/public-key`]: publicKey,
      [`GET ${env}/public-key`]: publicKey,
      [`GET ${repo}`]: list,
      [`GET ${env}`]: list,
      [`GET ${repo}/{secret_name}`]: get,
      [`GET ${env}/{secret_name}`]: get,
      [`PUT ${repo}/{secret_name}`]: put,
      [`PUT ${env}/{secret_name}`]: put,
      [`DELETE ${repo}/{secret_name}`]: remove,
      [`DELETE ${env}/{secret_name}`]: remove
    }
  }

  private put(route: Route, body: Record<string, unknown>): Answer {
    const scope = this.of(route)
    const name = route.params.secret_name.toUpperCase()
    if (!/^[A-Z_][A-Z0-9_]*$/.test(name) || name.startsWith('GITHUB_')) {
      throw error(
        422,
        'Invalid request.\n\nSecret names can only contain alphanumeric characters ([a-z], [A-Z], [0-9]) or underscores (_), must not start with a number or GITHUB_.'
      )
    }
    if (body.key_id !== scope.keyId) {
      throw error(
        422,
        `Invalid request.\n\nkey_id does not match the current public key of the ${scope.label} scope.`
      )
    }
    let value: string
    try {
      const opened = sodium.crypto_box_seal_open(
        sodium.from_base64(String(body.encrypted_value), sodium.base64_variants.ORIGINAL),
        scope.publicKey,
        scope.privateKey
      )
      value = new TextDecoder('utf-8', { fatal: true }).decode(opened)
    } catch {
      throw error(
        422,
        `Invalid request.\n\nencrypted_value could not be decrypted with the ${scope.label} scope's key.`
      )
    }
    const existing = scope.secrets.get(name)
    const t = now()
    scope.secrets.set(name, { value, createdAt: existing?.createdAt ?? t, updatedAt: t })
    this.writes.push({ scope: scope.label, name, at: Date.now() })
    return existing ? { status: 204 } : { status: 201, body: {} }
  }
}

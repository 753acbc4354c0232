// Which compose services receive a rotated key (pure). `restart: targeted`
// stops and recreates exactly these; graceful mode checks that the ones that
// verify tokens also receive <KEY>_PREVIOUS.
//
// The answer comes from the resolved configuration (`compose config`), run on
// the host against a copy of the compose file without its `env_file:` entries
// and a marker .env whose secret-looking values are unique markers: the
// output then holds no real secret (docker-compose 1.29's `config` inlines
// every env_file's contents into `environment:` and drops the key), and a
// marker in a service's resolved definition shows it receives that key
// however it is interpolated (`${KEY:?…}`, `$KEY`, inside a URL, a command).
// `env_file:` entries are read from the raw file: a service whose env_file is
// the rotated .env receives every key in it.
import path from 'node:path'
import { isMap, isPair, isScalar, parse, parseDocument, visit } from 'yaml'
import { parseEnv, setEnvValues } from './dotenv.js'

const MARKER = /ROTATIONMARKER\d+X/g
// URLs too: a DATABASE_URL holds a password.
const SECRET_LOOKING = /SECRET|KEY|PASSWORD|PASS|TOKEN|DSN|CREDENTIAL|URL|URI/i
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/

export interface MarkerEnv {
  /** The .env text with markers in place of secret-looking values, plus `<KEY>_PREVIOUS` markers. */
  text: string
  /** marker → .env key */
  keyOf: Record<string, string>
}

/**
 * The .env to resolve the compose file with: every rotated key, its
 * `_PREVIOUS`, and every secret-looking value replaced by a marker; other
 * values (ports, user names, ids) stay, so the file still validates.
 */
export function markerEnv(envText: string, rotatedKeys: string[]): MarkerEnv {
  const keyOf: Record<string, string> = {}
  const values: Record<string, string> = {}
  let n = 0
  const mark = (key: string): string => {
    const marker = `ROTATIONMARKER${n++}X`
    keyOf[marker] = key
    return marker
  }
  const wanted = new Set(rotatedKeys.flatMap((k) => [k, `${k}_PREVIOUS`]))
  for (const entry of parseEnv(envText)) {
    if (values[entry.key] !== undefined || !ENV_NAME.test(entry.key)) continue
    if (wanted.has(entry.key) || SECRET_LOOKING.test(entry.key)) values[entry.key] = mark(entry.key)
  }
  let text = setEnvValues(envText, values)
  const missing = [...wanted].filter((key) => values[key] === undefined)
  if (missing.length > 0) {
    if (text !== '' && !text.endsWith('\n')) text += '\n'
    text += missing.map((key) => `${key}=${mark(key)}\n`).join('')
  }
  return { text, keyOf }
}

/** The compose file without any `env_file:` entry (anchors and merge keys kept). */
export function withoutEnvFiles(composeYaml: string): string {
  const document = parseDocument(composeYaml, { merge: true })
  visit(document, {
    Pair(_, pair) {
      if (isPair(pair) && isScalar(pair.key) && pair.key.value === 'env_file') return visit.REMOVE
      return undefined
    }
  })
  if (!isMap(document.contents)) return composeYaml
  return document.toString({ lineWidth: 0 })
}

type Definition = Record<string, unknown>

function servicesOf(yaml: string): Record<string, Definition> {
  const document = parse(yaml, { merge: true }) as { services?: Record<string, Definition> } | null
  const services = document?.services ?? {}
  return Object.fromEntries(
    Object.entries(services).filter(([, d]) => d !== null && typeof d === 'object')
  )
}

function envFilesOf(definition: Definition): string[] {
  const value = definition.env_file
  if (value === undefined || value === null) return []
  const list = Array.isArray(value) ? value : [value]
  return list.map((item) =>
    typeof item === 'object' && item !== null
      ? String((item as { path?: unknown }).path)
      : String(item)
  )
}

/**
 * Whether an env_file entry (relative to the compose file's directory) is the
 * rotated .env (relative to deploy-path).
 */
export function isRotatedEnvFile(entry: string, composeFile: string, envFile: string): boolean {
  const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(composeFile), entry))
  return resolved === path.posix.normalize(envFile)
}

export interface ServiceKeys {
  service: string
  /** Rotated keys the service receives. */
  keys: string[]
  /** Rotated keys whose `<KEY>_PREVIOUS` it receives too. */
  previous: string[]
  /** Why, e.g. "env_file .env" or "environment JWT_SECRET, JWT_REFRESH_SECRET". */
  reasons: string[]
  /** It has an env_file that is not the rotated .env. */
  otherEnvFile: boolean
}

/** What one service receives of the rotated keys, and where from (compose and stack files alike). */
export class ServiceKeyCollector {
  private readonly rotated: Set<string>
  private readonly keys = new Set<string>()
  private readonly previous = new Set<string>()
  private readonly via = new Map<string, Set<string>>() // where → what

  constructor(private readonly rotatedKeys: string[]) {
    this.rotated = new Set(rotatedKeys)
  }

  /** A variable the service's `where` field uses (`what` names it in the reasons). */
  receive(key: string | undefined, where: string, what: string): void {
    if (key === undefined) return
    if (this.rotated.has(key)) {
      this.keys.add(key)
      if (!this.via.has(where)) this.via.set(where, new Set())
      ;(this.via.get(where) as Set<string>).add(what)
    } else if (key.endsWith('_PREVIOUS') && this.rotated.has(key.slice(0, -9))) {
      this.previous.add(key.slice(0, -9))
    }
  }

  /** The service loads the rotated .env itself: every key, and its _PREVIOUS. */
  loadsEnvFile(envFile: string): void {
    for (const key of this.rotated) {
      this.keys.add(key)
      this.previous.add(key)
    }
    this.via.set(`env_file ${envFile}`, new Set())
  }

  /** Undefined when the service receives no rotated key. */
  result(service: string, otherEnvFile: boolean): ServiceKeys | undefined {
    if (this.keys.size === 0) return undefined
    return {
      service,
      keys: this.rotatedKeys.filter((k) => this.keys.has(k)),
      previous: this.rotatedKeys.filter((k) => this.previous.has(k) && this.keys.has(k)),
      reasons: [...this.via].map(([where, set]) =>
        set.size > 0 ? `${where} ${[...set].join(', ')}` : where
      ),
      otherEnvFile
    }
  }
}

export interface Targets {
  /** Every service in the compose file. */
  services: string[]
  /** Services that receive at least one rotated key, in file order. */
  targets: ServiceKeys[]
}

/**
 * Reads the resolved configuration (marker .env, env_file stripped) and the
 * raw compose file; returns the services that receive a rotated key, and how.
 */
export function findTargets(
  resolvedYaml: string,
  rawComposeYaml: string,
  options: {
    rotatedKeys: string[]
    keyOf: Record<string, string>
    composeFile: string
    envFile: string
  }
): Targets {
  const resolved = servicesOf(resolvedYaml)
  const raw = servicesOf(rawComposeYaml)
  const names = Object.keys(raw).length > 0 ? Object.keys(raw) : Object.keys(resolved)
  const targets: ServiceKeys[] = []
  for (const service of names) {
    const envFiles = envFilesOf(raw[service] ?? {})
    const loadsRotated = envFiles.some((f) =>
      isRotatedEnvFile(f, options.composeFile, options.envFile)
    )
    const collector = new ServiceKeyCollector(options.rotatedKeys)
    if (loadsRotated) collector.loadsEnvFile(options.envFile)
    const definition = resolved[service] ?? {}
    for (const [field, value] of Object.entries(definition)) {
      if (field === 'environment' && value !== null && typeof value === 'object') {
        const entries = Array.isArray(value)
          ? value.map((item) => String(item).split(/=(.*)/s).slice(0, 2))
          : Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, String(v ?? '')])
        for (const [name, text] of entries) {
          for (const marker of String(text ?? '').match(MARKER) ?? []) {
            const key = options.keyOf[marker]
            collector.receive(key, 'environment', name === key ? name : `${name} (${key})`)
          }
        }
        continue
      }
      for (const marker of JSON.stringify(value).match(MARKER) ?? []) {
        const key = options.keyOf[marker]
        collector.receive(key, field, key)
      }
    }
    const target = collector.result(service, envFiles.length > 0 && !loadsRotated)
    if (target) targets.push(target)
  }
  return { services: names, targets }
}

/** "backend (environment JWT_SECRET, JWT_REFRESH_SECRET); worker (…)" */
export function describeTargets(targets: ServiceKeys[]): string {
  return targets.map((t) => `${t.service} (${t.reasons.join('; ')})`).join(', ')
}

/** Every reason preflight refuses the targets, as sentences naming the fix. */
export function targetProblems(
  found: Targets,
  config: {
    mode: string
    restart: string
    gracefulServices: string[]
    postgresService: string
    composeFile: string
    envFile: string
    rotatedKeys: string[]
  }
): string[] {
  const problems: string[] = []
  const rotatesSomething = config.mode === 'immediate' || config.mode === 'graceful'
  if (rotatesSomething && found.targets.length === 0) {
    problems.push(
      `no service in ${config.composeFile} receives ${config.rotatedKeys.join(' or ')} (through environment: or an env_file: that is ${config.envFile}): rotating would change nothing the app reads. Check keys, compose-file and env-file`
    )
    return problems
  }
  if (
    config.restart === 'targeted' &&
    config.mode === 'immediate' &&
    found.targets.some((t) => t.service === config.postgresService)
  ) {
    problems.push(
      `postgres-service "${config.postgresService}" receives a rotated key, so restart: targeted would stop the database the revoke needs: use restart: all`
    )
  }
  if (config.mode !== 'graceful') return problems
  const unknown = config.gracefulServices.filter((s) => !found.services.includes(s))
  if (unknown.length > 0) {
    problems.push(
      `graceful-services names ${unknown.map((s) => `"${s}"`).join(', ')}, not a service of ${config.composeFile} (services: ${found.services.join(', ')})`
    )
  }
  const byName = new Map(found.targets.map((t) => [t.service, t]))
  const listed = config.gracefulServices.filter((s) => found.services.includes(s))
  const noKey = listed.filter((s) => !byName.has(s))
  if (noKey.length > 0) {
    problems.push(
      `graceful-services names ${noKey.join(', ')}, which receive${noKey.length === 1 ? 's' : ''} no rotated key: list the services that verify tokens`
    )
  }
  const verifiers =
    config.gracefulServices.length > 0
      ? listed.flatMap((s) => (byName.has(s) ? [byName.get(s) as ServiceKeys] : []))
      : found.targets
  const missing = verifiers.flatMap((t) =>
    t.keys.filter((k) => !t.previous.includes(k)).map((key) => ({ service: t.service, key, t }))
  )
  if (missing.length > 0) {
    const first = missing[0]
    problems.push(
      `mode graceful needs the services to receive <KEY>_PREVIOUS, but ${config.composeFile} does not pass ${missing
        .map(
          (m) =>
            `${m.key}_PREVIOUS to ${m.service}${m.t.otherEnvFile ? ' (its env_file: is not ' + config.envFile + ')' : ''}`
        )
        .join(
          ', '
        )}. Add e.g. "${first.key}_PREVIOUS: \${${first.key}_PREVIOUS:-}" under each service's environment: (docs/DUAL-SECRET.md)${config.gracefulServices.length === 0 ? ', or name the services that verify tokens in graceful-services' : ''}, or use mode immediate`
    )
  }
  return problems
}

// Graceful mode only helps when the services actually receive <KEY>_PREVIOUS.
// CloudBox lists each variable under `environment:`, so a .env line alone is
// not enough: the compose file must pass it on.
import { parse } from 'yaml'

export interface MissingPrevious {
  service: string
  key: string
}

type EnvironmentBlock = Record<string, unknown> | string[] | undefined

function environmentNames(environment: EnvironmentBlock): { names: Set<string>; text: string } {
  const names = new Set<string>()
  let text = ''
  if (Array.isArray(environment)) {
    for (const item of environment) {
      const entry = String(item)
      names.add(entry.split('=')[0].trim())
      text += `${entry}\n`
    }
  } else if (environment && typeof environment === 'object') {
    for (const [name, value] of Object.entries(environment)) {
      names.add(name)
      text += `${name}=${value === null ? '' : String(value)}\n`
    }
  }
  return { names, text }
}

/**
 * For each service that receives KEY (by name, or by `${KEY}` interpolation),
 * reports the keys whose KEY_PREVIOUS it does not receive. A service that
 * loads the whole .env through `env_file` receives everything.
 */
export function servicesMissingPrevious(composeYaml: string, keys: string[]): MissingPrevious[] {
  const document = parse(composeYaml) as {
    services?: Record<string, Record<string, unknown>>
  } | null
  const services = document?.services ?? {}
  const missing: MissingPrevious[] = []
  for (const [service, definition] of Object.entries(services)) {
    if (definition === null || typeof definition !== 'object') continue
    if (definition.env_file !== undefined) continue
    const { names, text } = environmentNames(definition.environment as EnvironmentBlock)
    for (const key of keys) {
      const uses = names.has(key) || new RegExp(`\\$\\{${key}(?![A-Za-z0-9_])`).test(text)
      if (!uses) continue
      const previous = `${key}_PREVIOUS`
      const passes =
        names.has(previous) || new RegExp(`\\$\\{${previous}(?![A-Za-z0-9_])`).test(text)
      if (!passes) missing.push({ service, key })
    }
  }
  return missing
}

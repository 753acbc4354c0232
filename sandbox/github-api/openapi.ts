// GitHub's published OpenAPI description (@octokit/openapi) as the stand-in's
// referee: path templates → routes, request bodies and responses → ajv.

import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { Ajv, type ValidateFunction, type ErrorObject } from 'ajv'
import formatsModule from 'ajv-formats'

type Json = Record<string, unknown>

export interface Route {
  method: string
  template: string
  params: Record<string, string>
  operation: Json
}

interface Template {
  template: string
  regex: RegExp
  names: string[]
  params: number
  methods: Record<string, Json>
}

const METHODS = ['get', 'put', 'post', 'patch', 'delete', 'head', 'options']
const REF_BASE = 'github-openapi'

function specPath(): string {
  const require = createRequire(import.meta.url)
  const pkg = require.resolve('@octokit/openapi/package.json')
  return pkg.replace(/package\.json$/, 'generated/api.github.com.json')
}

function addFormats(ajv: Ajv): void {
  // CJS module with a default export: NodeNext sees the namespace, Node gives the function.
  const mod = formatsModule as unknown as { default?: (a: Ajv) => void }
  const plugin = (mod.default ?? mod) as (a: Ajv) => void
  plugin(ajv)
}

export class OpenApi {
  private static instance: OpenApi | undefined
  private readonly templates: Template[] = []
  private readonly ajv: Ajv
  private readonly validators = new Map<string, ValidateFunction>()

  private constructor(readonly doc: Json) {
    const paths = doc.paths as Record<string, Json>
    for (const [template, item] of Object.entries(paths)) {
      const names: string[] = []
      const source = template
        .split('/')
        .map((segment) =>
          segment.replace(/\{([^}]+)\}|[^{}]+/g, (whole, name: string | undefined) => {
            if (name === undefined) return whole.replace(/[.*+?^$()|[\]\\]/g, '\\$&')
            names.push(name)
            return '([^/]+)'
          })
        )
        .join('/')
      const methods: Record<string, Json> = {}
      for (const m of METHODS) if (item[m]) methods[m.toUpperCase()] = item[m] as Json
      this.templates.push({
        template,
        regex: new RegExp(`^${source}$`),
        names,
        params: names.length,
        methods
      })
    }
    // Literal segments win over parameters (…/secrets/public-key before …/secrets/{secret_name}).
    this.templates.sort((a, b) => a.params - b.params)
    this.ajv = new Ajv({ strict: false, allErrors: true, validateSchema: false, logger: false })
    addFormats(this.ajv)
    const components = doc.components as Json
    this.ajv.addSchema({
      $id: REF_BASE,
      components: { schemas: openApiToJsonSchema(components.schemas) }
    })
  }

  static load(): OpenApi {
    OpenApi.instance ??= new OpenApi(JSON.parse(readFileSync(specPath(), 'utf8')) as Json)
    return OpenApi.instance
  }

  /** The operation for method + path, or undefined (GitHub answers 404 either way). */
  match(method: string, pathname: string): Route | undefined {
    let decodedOk = true
    for (const t of this.templates) {
      const m = t.regex.exec(pathname)
      if (m === null) continue
      const operation = t.methods[method.toUpperCase()]
      if (operation === undefined) continue
      const params: Record<string, string> = {}
      t.names.forEach((name, i) => {
        try {
          params[name] = decodeURIComponent(m[i + 1])
        } catch {
          decodedOk = false
        }
      })
      if (!decodedOk) return undefined
      return { method: method.toUpperCase(), template: t.template, params, operation }
    }
    return undefined
  }

  private resolve(node: unknown): Json | undefined {
    let current = node as Json | undefined
    for (let i = 0; i < 10 && current && typeof current.$ref === 'string'; i++) {
      const parts = (current.$ref as string).replace(/^#\//, '').split('/')
      current = parts.reduce<unknown>((acc, p) => (acc as Json | undefined)?.[p], this.doc) as
        Json | undefined
    }
    return current
  }

  private validator(key: string, schema: unknown): ValidateFunction {
    let v = this.validators.get(key)
    if (v === undefined) {
      const text = JSON.stringify(openApiToJsonSchema(schema)).replaceAll(
        '"#/components/',
        `"${REF_BASE}#/components/`
      )
      v = this.ajv.compile(JSON.parse(text) as Json)
      this.validators.set(key, v)
    }
    return v
  }

  /** Errors of a JSON request body against the operation's requestBody schema; [] when valid. */
  validateRequest(route: Route, body: unknown): string[] {
    const requestBody = this.resolve(route.operation.requestBody)
    if (requestBody === undefined) return []
    const schema = (requestBody.content as Json | undefined)?.['application/json'] as
      Json | undefined
    if (schema?.schema === undefined) return []
    if (body === undefined) return requestBody.required ? ['Request body is required.'] : []
    const validate = this.validator(`req ${route.method} ${route.template}`, schema.schema)
    return validate(body) ? [] : describe(validate.errors)
  }

  /** Errors of a response against the operation's documented response; [] when valid. */
  validateResponse(route: Route, status: number, body: unknown): string[] {
    const responses = route.operation.responses as Json
    const response = this.resolve(responses[String(status)] ?? responses.default)
    if (response === undefined) {
      return [`status ${status} is not a documented response of ${route.method} ${route.template}`]
    }
    const content = (response.content as Json | undefined)?.['application/json'] as Json | undefined
    if (content?.schema === undefined) {
      return body === undefined ? [] : [`status ${status} documents no body, but one was sent`]
    }
    const validate = this.validator(
      `res ${status} ${route.method} ${route.template}`,
      content.schema
    )
    return validate(body) ? [] : describe(validate.errors)
  }

  /** The documented example body of a response (a starting point for realistic answers). */
  example(method: string, template: string, status: number): Json {
    const operation = (this.doc.paths as Record<string, Json>)[template][
      method.toLowerCase()
    ] as Json
    const response = this.resolve((operation.responses as Json)[String(status)])
    const content = (response?.content as Json)['application/json'] as Json
    const example = this.resolve(Object.values(content.examples as Json)[0])
    return structuredClone(example?.value) as Json
  }
}

function describe(errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => {
    const where =
      e.instancePath === '' ? 'body' : `"${e.instancePath.slice(1).replaceAll('/', '.')}"`
    if (e.keyword === 'required') {
      const missing = (e.params as { missingProperty: string }).missingProperty
      return e.instancePath === ''
        ? `"${missing}" wasn't supplied.`
        : `"${missing}" wasn't supplied in ${where}.`
    }
    return `${where} ${e.message ?? 'is invalid'}.`
  })
}

/** OpenAPI 3.0 `nullable: true` (also beside allOf/anyOf, which ajv refuses) → anyOf with null. */
function openApiToJsonSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(openApiToJsonSchema)
  if (node === null || typeof node !== 'object') return node
  const out: Json = {}
  for (const [k, v] of Object.entries(node as Json)) {
    if (k === 'example' || k === 'examples' || k === 'description') continue
    out[k] = openApiToJsonSchema(v)
  }
  if (out.nullable === true) {
    delete out.nullable
    return { anyOf: [{ type: 'null' }, out] }
  }
  return out
}

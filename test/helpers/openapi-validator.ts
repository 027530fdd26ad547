import { Ajv2020 } from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'
import { openApiDocument } from '../../admin-api/openapi.ts'

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void

type Doc = { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: { $ref: string } }> }> }>> }

/**
 * Checks admin API responses against the OpenAPI document with an independent JSON Schema validator (ajv),
 * so every response a test sees is also a test of the document.
 */
export function openApiValidator() {
  const doc = openApiDocument() as unknown as Doc & Record<string, unknown>
  const ajv = new Ajv2020({ strict: false, allErrors: true })
  addFormats(ajv)
  ajv.addSchema({ $id: 'keygate-openapi', components: doc.components })
  const templates = Object.keys(doc.paths).map((p) => ({ template: p, re: new RegExp('^' + p.replace(/\{[^}]+\}/g, '[^/]+') + '$') }))

  /** Returns the problems of one response; an empty list when it matches the document. */
  return function check(method: string, url: string, status: number, contentType: string, body: unknown): string[] {
    const path = url.split('?')[0]!
    if (!path.startsWith('/api/v1/auth')) return []
    const match = templates.find((t) => t.re.test(path))
    const op = match ? doc.paths[match.template]![method.toLowerCase()] : undefined
    if (!op) return status === 404 ? [] : [`${method} ${path} answered ${status} but is not in the OpenAPI document`]
    const response = op.responses[String(status)]
    if (!response) return [`${method} ${match!.template}: status ${status} is not documented`]
    const media = contentType.split(';')[0]!.trim()
    const content = response.content?.[media]
    if (!content) return [`${method} ${match!.template} ${status}: content type ${media} is not documented`]
    const validate = ajv.getSchema(`keygate-openapi${content.schema.$ref}`) ?? ajv.compile({ $ref: `keygate-openapi${content.schema.$ref}` })
    if (validate(body)) return []
    return [`${method} ${match!.template} ${status}: ${ajv.errorsText(validate.errors)}`]
  }
}

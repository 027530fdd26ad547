import { readFileSync } from 'node:fs'
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void

/** The contract's response shapes as JSON Schema (`schemas.json`, written from CONTRACT.md field by field). */
export const CONTRACT_SCHEMAS = JSON.parse(readFileSync(new URL('./schemas.json', import.meta.url), 'utf8')) as {
  $id: string
  $defs: Record<string, Record<string, unknown>>
}

export type ShapeName = keyof typeof CONTRACT_SCHEMAS.$defs & string

/** Validates bodies against one of the contract's shapes; returns the problems (empty when it conforms). */
export function contractValidator() {
  const ajv = new Ajv2020({ strict: true, allErrors: true, strictTypes: false })
  addFormats(ajv)
  ajv.addSchema(CONTRACT_SCHEMAS)
  const compiled = new Map<string, ValidateFunction>()
  return function problems(shape: string, body: unknown): string[] {
    if (!(shape in CONTRACT_SCHEMAS.$defs)) throw new Error(`no contract shape ${shape}`)
    let validate = compiled.get(shape)
    if (!validate) compiled.set(shape, (validate = ajv.compile({ $ref: `${CONTRACT_SCHEMAS.$id}#/$defs/${shape}` })))
    return validate(body) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '(body)'} ${e.message}`)
  }
}

import t, { type Test } from 'tap'
import { openApiDocument } from '../../admin-api/openapi.ts'
import { CONTRACT_SCHEMAS } from './contract.ts'

/**
 * The OpenAPI document (built from admin-api/schemas.ts) and the contract's JSON Schemas describe the same
 * answers: every field the contract lists is in the document's schema, required there, with the same types,
 * nullability and format. A change to either that the other does not share fails here.
 */
type Schema = Record<string, any>
const doc = openApiDocument() as { components: { schemas: Record<string, Schema> }; paths: Record<string, Record<string, Schema>> }
const components = doc.components.schemas

function resolve(s: Schema, root: Schema): Schema {
  if (typeof s.$ref !== 'string') return s
  const name = s.$ref.split('/').pop()!
  return s.$ref.startsWith('#/components/') ? components[name]! : root.$defs[name]
}

/** The JSON types a schema admits, sorted ("integer" and "null" included), from `type`, `const` or `anyOf`. */
function types(s: Schema, root: Schema): string[] {
  s = resolve(s, root)
  if (Array.isArray(s.anyOf)) return [...new Set(s.anyOf.flatMap((x: Schema) => types(x, root)))].sort()
  if (Array.isArray(s.type)) return [...s.type].sort()
  if (typeof s.type === 'string') return [s.type]
  if ('const' in s) return [s.const === null ? 'null' : typeof s.const]
  return []
}
function format(s: Schema, root: Schema): string | undefined {
  s = resolve(s, root)
  if (Array.isArray(s.anyOf)) return s.anyOf.map((x: Schema) => format(x, root)).find(Boolean)
  return s.format
}

/** Contract shape → the OpenAPI component that answers it. */
const SAME: Record<string, string> = {
  UserResponse: 'UserResponse',
  TokenResponse: 'TokenResponse',
  TokenRefreshResponse: 'RefreshResponse',
  UserListResponse: 'UserListResponse',
  APIKeyCreated: 'APIKeyCreated',
  APIKey: 'APIKey',
  APIKeyList: 'APIKeyList',
  Message: 'Message',
  Problem: 'Problem',
}

function compare(t: Test, path: string, contract: Schema, openapi: Schema) {
  contract = resolve(contract, CONTRACT_SCHEMAS)
  openapi = resolve(openapi, {})
  t.same(types(openapi, {}), types(contract, CONTRACT_SCHEMAS), `${path}: types`)
  const f = format(contract, CONTRACT_SCHEMAS)
  if (f) t.equal(format(openapi, {}), f, `${path}: format ${f}`)
  if (contract.type === 'object' && contract.properties) {
    for (const [field, sub] of Object.entries(contract.properties as Record<string, Schema>)) {
      const there = openapi.properties?.[field]
      if (!there) { t.fail(`${path}.${field} is missing from the OpenAPI document`); continue }
      t.equal(openapi.required?.includes(field) ?? false, contract.required.includes(field), `${path}.${field}: required in both or neither`)
      // A nested user or list is compared where its own shape is compared.
      const nested = resolve(sub, CONTRACT_SCHEMAS)
      if (typeof sub.$ref === 'string' || nested.type === 'array') { t.same(types(there, {}), types(sub, CONTRACT_SCHEMAS), `${path}.${field}: types`); continue }
      compare(t, `${path}.${field}`, sub, there)
    }
  }
  if (contract.type === 'array') compare(t, `${path}[]`, contract.items, openapi.items)
}

t.test('every contract shape has its OpenAPI schema, field by field', async (t) => {
  for (const [shape, component] of Object.entries(SAME)) {
    t.ok(components[component], `${component} is in the OpenAPI document`)
    if (components[component]) compare(t, shape, CONTRACT_SCHEMAS.$defs[shape]!, components[component]!)
  }
  t.same(Object.keys(CONTRACT_SCHEMAS.$defs).sort(), Object.keys(SAME).sort(), 'every contract shape is compared')
})

t.test('the contract operations answer the contract shapes in the OpenAPI document', async (t) => {
  const ok = (path: string, method: string, status: number) => doc.paths[`/api/v1/auth${path}`]?.[method]?.responses?.[status]?.content?.['application/json']?.schema?.$ref?.split('/').pop()
  const rows: Array<[string, string, number, string]> = [
    ['/login', 'post', 200, 'TokenResponse'], ['/register', 'post', 201, 'TokenResponse'], ['/refresh', 'post', 200, 'RefreshResponse'],
    ['/logout', 'post', 200, 'Message'], ['/me', 'get', 200, 'UserResponse'], ['/me', 'put', 200, 'UserResponse'],
    ['/change-password', 'post', 200, 'Message'], ['/api-key', 'post', 200, 'APIKeyCreated'], ['/api-keys', 'get', 200, 'APIKeyList'],
    ['/api-key', 'delete', 200, 'Message'], ['/account', 'delete', 200, 'Message'], ['/users', 'get', 200, 'UserListResponse'],
    ['/password-reset/request', 'post', 200, 'Message'], ['/password-reset/confirm', 'post', 200, 'Message'],
  ]
  for (const [path, method, status, component] of rows) t.equal(ok(path, method, status), component, `${method.toUpperCase()} ${path} ${status} answers ${component}`)
})

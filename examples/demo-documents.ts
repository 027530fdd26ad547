import { createHash } from 'node:crypto'
import { createServer, type Server, type ServerResponse } from 'node:http'
import busboy from 'busboy'
import { requireIdentity, type IdentifiedRequest, type VerifyIdentityOptions } from '@keygate/verify'

/**
 * Demo document service: `POST /api/v1/documents` takes a multipart upload (`-F file=@x.pdf`) or a raw body
 * and answers with the byte count and SHA-256 of what it received, hashing as the bytes stream in (nothing
 * is kept in memory or on disk).
 */
export function createDocumentService(verify: VerifyIdentityOptions): Server {
  const guard = requireIdentity(verify)
  const json = (res: ServerResponse, status: number, body: unknown) => {
    if (res.headersSent) return
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(body))
  }
  return createServer((req: IdentifiedRequest, res) => {
    guard(req, res, () => {
      const identity = req.identity!
      const path = (req.url ?? '/').split('?')[0]!.replace(/\/+$/, '')
      if (path !== '/api/v1/documents') return json(res, 404, { detail: 'Not Found' })
      if (req.method === 'GET') return json(res, 200, { service: 'documents', documents: [], verified_identity: { user_id: identity.sub, username: identity.username, auth: identity.auth } })
      if (req.method !== 'POST') return json(res, 405, { detail: 'Method Not Allowed' })
      const who = { user_id: identity.sub, username: identity.username, auth: identity.auth, key_id: identity.keyId }

      if ((req.headers['content-type'] ?? '').startsWith('multipart/form-data')) {
        let parser: busboy.Busboy
        try {
          parser = busboy({ headers: req.headers })
        } catch {
          return json(res, 400, { detail: 'Malformed multipart body' })
        }
        const files: Array<{ field: string; filename: string; bytes: number; sha256: string }> = []
        parser.on('file', (field, file, info) => {
          const hash = createHash('sha256')
          let bytes = 0
          file.on('data', (chunk: Buffer) => { bytes += chunk.length; hash.update(chunk) })
          file.on('end', () => files.push({ field, filename: info.filename ?? "", bytes, sha256: hash.digest('hex') }))
        })
        parser.on('error', () => json(res, 400, { detail: 'Malformed multipart body' }))
        parser.on('close', () => json(res, 201, { service: 'documents', received_by: who, files, bytes: files.reduce((n, f) => n + f.bytes, 0), sha256: files[0]?.sha256 ?? null }))
        req.pipe(parser)
        return
      }
      const hash = createHash('sha256')
      let bytes = 0
      req.on('data', (chunk: Buffer) => { bytes += chunk.length; hash.update(chunk) })
      req.on('end', () => json(res, 201, { service: 'documents', received_by: who, bytes, sha256: hash.digest('hex') }))
      req.on('error', () => res.destroy())
    })
  })
}

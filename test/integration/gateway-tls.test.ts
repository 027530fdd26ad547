import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { createServer as createHttpsServer } from 'node:https'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { Agent, request } from 'undici'
import { readFileSync } from 'node:fs'
import WebSocket, { WebSocketServer } from 'ws'
import { keygateOnPglite } from '../helpers/keygate.ts'
import { testPki } from '../helpers/certificates.ts'
import { routeFile } from '../helpers/upstreams.ts'

/** The fingerprint of the certificate the listener presents to a new connection. */
function presented(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = tlsConnect({ port, host: '127.0.0.1', ca, servername: 'localhost' }, () => {
      const fp = socket.getPeerCertificate().fingerprint256
      socket.destroy()
      resolve(fp)
    })
    socket.on('error', reject)
  })
}

async function until(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** An HTTPS upstream answering with what it saw of the client's certificate. */
async function httpsUpstream(options: { cert: string; key: string; ca?: string; requireClientCert?: boolean }) {
  const server = createHttpsServer({ cert: options.cert, key: options.key, ca: options.ca, requestCert: options.requireClientCert, rejectUnauthorized: options.requireClientCert }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate()
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ client: peer?.subject?.CN ?? null }))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  return { origin: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()) }) }
}

t.test('TLS: the listener, its certificate reload, HTTPS upstreams with a private CA and client certificates', async (t) => {
  const pki = testPki('gateway')
  t.teardown(() => pki.remove())
  const ca = readFileSync(pki.caFile, 'utf8')
  const first = pki.issue('localhost')
  const upstreamCert = pki.issue('localhost')
  const client = pki.issue('keygate-client', { client: true })
  // The listener's files where a renewal writes them.
  const live = join(pki.dir, 'live')
  mkdirSync(live)
  const certFile = join(live, 'tls.crt')
  const keyFile = join(live, 'tls.key')
  copyFileSync(first.certFile, certFile)
  copyFileSync(first.keyFile, keyFile)

  const plain = await httpsUpstream({ cert: upstreamCert.cert, key: upstreamCert.key })
  const mutual = await httpsUpstream({ cert: upstreamCert.cert, key: upstreamCert.key, ca, requireClientCert: true })
  // A WebSocket upstream over mutual TLS: it echoes the CN of the client certificate it was shown.
  const wsServer = createHttpsServer({ cert: upstreamCert.cert, key: upstreamCert.key, ca, requestCert: true, rejectUnauthorized: true })
  const wss = new WebSocketServer({ server: wsServer })
  wss.on('connection', (ws, req) => ws.send(`client=${(req.socket as TLSSocket).getPeerCertificate().subject?.CN}`))
  await new Promise<void>((r) => wsServer.listen(0, '127.0.0.1', () => r()))
  const wsOrigin = `https://127.0.0.1:${(wsServer.address() as AddressInfo).port}`
  t.teardown(() => Promise.all([plain.close(), mutual.close(), new Promise<void>((r) => { wss.close(); wsServer.closeAllConnections(); wsServer.close(() => r()) })]))
  const config = routeFile(`
upstreams:
  untrusted: { url: "${plain.origin}" }
  private: { url: "${plain.origin}", ca_file: "${pki.caFile}" }
  mutual: { url: "${mutual.origin}", ca_file: "${pki.caFile}", cert_file: "${client.certFile}", key_file: "${client.keyFile}" }
  mutual-anonymous: { url: "${mutual.origin}", ca_file: "${pki.caFile}" }
  sockets: { url: "${wsOrigin}", ca_file: "${pki.caFile}", cert_file: "${client.certFile}", key_file: "${client.keyFile}" }
routes:
  - { name: sockets, prefix: /sockets, upstream: sockets, auth: public, websockets: true }
  - { name: untrusted, prefix: /untrusted, upstream: untrusted, auth: public }
  - { name: private, prefix: /private, upstream: private, auth: public }
  - { name: mutual, prefix: /mutual, upstream: mutual, auth: public }
  - { name: mutual-anonymous, prefix: /mutual-anonymous, upstream: mutual-anonymous, auth: public }
`)
  const kg = await keygateOnPglite({ KEYGATE_CONFIG: config, KEYGATE_DEMOS: 'false', KEYGATE_TLS_CERT_FILE: certFile, KEYGATE_TLS_KEY_FILE: keyFile })
  t.teardown(async () => { await kg.close(); kg.removeData() })
  const trusting = new Agent({ connect: { ca, servername: 'localhost' } })
  t.teardown(() => trusting.close())
  const get = async (path: string, requestId?: string) => {
    const res = await request(`${kg.url}${path}`, { dispatcher: trusting, headers: requestId ? { 'x-request-id': requestId } : {} })
    return { status: res.statusCode, body: await res.body.text() }
  }
  const line = (id: string) => kg.logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'request' && l.request_id === id)

  await t.test('the listener speaks TLS with the configured certificate', async (t) => {
    t.match(kg.url, /^https:\/\//)
    t.match(kg.logs.find((l) => l.includes('keygate listening')), /"url":"https:\/\/127\.0\.0\.1:\d+"/)
    t.equal((await get('/healthz')).status, 200)
    t.equal(await presented(kg.port, ca), new (await import('node:crypto')).X509Certificate(first.cert).fingerprint256)
    const metrics = await fetch(`http://127.0.0.1:${kg.metricsPort}/metrics`).then((r) => r.text())
    t.match(metrics, /^keygate_tls_certificate_expiry_timestamp_seconds \d+/m)
  })

  await t.test('a renewed certificate written over the files is served to new connections; a broken one is refused', async (t) => {
    const renewed = pki.issue('localhost')
    const renewedFp = new (await import('node:crypto')).X509Certificate(renewed.cert).fingerprint256
    writeFileSync(keyFile, renewed.key)
    writeFileSync(certFile, renewed.cert)
    await until('the renewed certificate', async () => (await presented(kg.port, ca)) === renewedFp)
    t.pass('new connections get the renewed certificate')
    t.ok(kg.logs.some((l) => l.includes('"msg":"TLS certificate reloaded"')), 'the reload is logged')
    t.notOk(kg.logs.some((l) => l.includes('PRIVATE KEY')), 'the key is never logged')
    writeFileSync(keyFile, first.key)
    await until('the refusal of a key that does not match', async () => kg.logs.some((l) => l.includes('TLS certificate reload failed') && l.includes('not the private key')))
    t.equal(await presented(kg.port, ca), renewedFp, 'the certificate in force keeps serving')
    t.equal((await get('/healthz')).status, 200)
  })

  await t.test('an HTTPS upstream signed by a private CA: refused without ca_file (the access line says TLS), served with it', async (t) => {
    const refused = await get('/untrusted/x', 'tls-untrusted')
    t.equal(refused.status, 502)
    t.match(line('tls-untrusted'), { code: 'UPSTREAM_UNAVAILABLE', cause: 'TLS', cause_detail: /CERT|SIGNATURE|ISSUER/, upstream: plain.origin })
    t.comment(`access line: ${JSON.stringify(line('tls-untrusted'))}`)
    const served = await get('/private/x')
    t.equal(served.status, 200)
    t.same(JSON.parse(served.body), { client: null })
  })

  await t.test('mutual TLS: the client certificate is presented to an upstream that requires one', async (t) => {
    const served = await get('/mutual/x')
    t.equal(served.status, 200)
    t.same(JSON.parse(served.body), { client: 'keygate-client' }, 'the upstream saw the gateway\'s client certificate')
    const anonymous = await get('/mutual-anonymous/x', 'tls-anonymous')
    t.equal(anonymous.status, 502, 'without one the upstream refuses the handshake')
    t.ok(line('tls-anonymous').cause, `with a cause (${line('tls-anonymous').cause})`)
  })

  await t.test('a WebSocket through the TLS listener to an upstream over mutual TLS', async (t) => {
    const ws = new WebSocket(`${kg.url.replace('https', 'wss')}/sockets/live`, { ca })
    const first = await new Promise<string>((resolve, reject) => {
      ws.once('message', (m) => resolve(m.toString()))
      ws.once('error', reject)
    })
    ws.close()
    t.equal(first, 'client=keygate-client', 'the upstream saw the gateway\'s client certificate on the WebSocket leg too')
    const line = kg.logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'request' && l.upgrade === 'websocket')
    t.match(line, { status: 101, route: 'sockets', path: '/sockets/live', upstream: wsOrigin, trace_id: /^[0-9a-f]{32}$/ })
  })
})

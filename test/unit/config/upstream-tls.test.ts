import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { parseFileConfig } from '../../../config/load.ts'
import { resolveRoutes } from '../../../gateway/router.ts'
import { testPki } from '../../helpers/certificates.ts'

const pki = testPki('checks')
t.teardown(() => pki.remove())
const client = pki.issue('client', { client: true })
const other = pki.issue('other', { client: true })
writeFileSync(join(pki.dir, 'not-pem.txt'), 'hello')

/** The problems of a route file with one upstream `billing` written as `upstream`. */
function problems(upstream: string): string[] {
  const file = join(pki.dir, 'keygate.yaml')
  const parsed = parseFileConfig(`upstreams:\n  billing: ${upstream}\nroutes:\n  - { name: billing, prefix: /billing, upstream: billing }\n`, file, {})
  if (!parsed.config) return parsed.problems
  // What parseFileConfig (and so `keygate config check`) finds, resolveRoutes finds too: the files may change in between.
  return resolveRoutes(parsed.config, file, new Map()).problems
}

t.test('an upstream\'s TLS files are checked at load, each problem naming the upstream, the field and the file', async (t) => {
  t.same(problems(`{ url: "https://billing:443", ca_file: "${pki.caFile}", cert_file: "${client.certFile}", key_file: "${client.keyFile}" }`), [])
  t.same(problems('{ url: "https://billing:443", ca_file: "ca.pem" }'), [], 'a relative path is read from the route file\'s directory')
  t.match(problems('{ url: "https://billing:443", ca_file: "/nonexistent/ca.pem" }'), [/upstreams\.billing\.ca_file: cannot read \/nonexistent\/ca\.pem \(ENOENT\)/])
  t.match(problems('{ url: "https://billing:443", ca_file: "not-pem.txt" }'), [/upstreams\.billing\.ca_file: not-pem\.txt holds no PEM certificate/])
  t.match(problems(`{ url: "http://billing:80", ca_file: "${pki.caFile}" }`), [/upstreams\.billing\.ca_file: TLS settings apply to https:\/\/ upstreams only, but its url is not https:\/\//])
  t.match(problems(`{ url: "https://billing:443", cert_file: "${client.certFile}" }`), [/upstreams\.billing\.cert_file: a client certificate needs its private key \(key_file\)/])
  t.match(problems(`{ url: "https://billing:443", key_file: "${client.keyFile}" }`), [/upstreams\.billing\.key_file: a client key needs its certificate \(cert_file\)/])
  t.match(problems(`{ url: "https://billing:443", cert_file: "${client.certFile}", key_file: "${other.keyFile}" }`), [/upstreams\.billing\.key_file: .* is not the private key of .*client/])
  t.match(problems('{ url: "https://billing:443", ca_file: 5 }'), [/upstreams\.billing\.ca_file: expected a file path/])
  const listed = problems(`{ url: "https://billing:443", cert_file: "${client.certFile}", key_file: "${other.keyFile}" }`).join('\n')
  t.notMatch(listed, /BEGIN|PRIVATE/, 'no file contents in a message')
})

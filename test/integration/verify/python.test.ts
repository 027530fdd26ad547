import { execFile } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { BOOTSTRAP, call, keygateOnPglite } from '../../helpers/keygate.ts'
import { echoRouteFile, echoServer } from '../../helpers/upstreams.ts'

const run = promisify(execFile)

/**
 * The README's Python snippet, run as written (only the gateway's address replaced) by a Python with PyJWT:
 * KEYGATE_TEST_PYTHON, else Debian's /usr/bin/python3 (python3-jwt, python3-cryptography), else python3.
 */
const PYTHONS = [process.env.KEYGATE_TEST_PYTHON, '/usr/bin/python3', 'python3'].filter((p): p is string => !!p)

async function pythonWithPyJwt(): Promise<{ python: string; versions: string } | undefined> {
  for (const python of PYTHONS) {
    try {
      const { stdout } = await run(python, ['-c', 'import sys, jwt, cryptography; print(f"Python {sys.version.split()[0]}, PyJWT {jwt.__version__}, cryptography {cryptography.__version__}")'])
      return { python, versions: stdout.trim() }
    } catch {
      // not this one
    }
  }
  return undefined
}

function readmeSnippet(): string {
  const readme = readFileSync(join(import.meta.dirname, '../../../README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('### With any JOSE library (Python)'))
  const match = /```python\n([\s\S]*?)```/.exec(section)
  if (!match) throw new Error('README: no python block under "With any JOSE library (Python)"')
  return match[1]!
}

t.test("the README's Python snippet verifies a real identity header and refuses a forged or misdirected one", async (t) => {
  const found = await pythonWithPyJwt()
  if (!found) {
    return t.fail(`no Python with PyJWT found (tried ${PYTHONS.join(', ')}): apt-get install python3-jwt python3-cryptography, or pip install "pyjwt[crypto]" and set KEYGATE_TEST_PYTHON`)
  }
  t.comment(found.versions)
  const echo = await echoServer()
  const kg = await keygateOnPglite({ KEYGATE_CONFIG: echoRouteFile(echo.origin, '- { name: printer, prefix: /printer, upstream: echo }'), KEYGATE_DEMOS: 'false' })
  t.teardown(async () => { await kg.close(); kg.removeData(); await echo.close() })

  const snippet = readmeSnippet()
  t.match(snippet, 'http://keygate:8000/.well-known/jwks.json')
  const script = join(kg.dataDir, 'verify.py')
  writeFileSync(script, `${snippet.replace('http://keygate:8000', kg.url)}
import json, sys
try:
    print(json.dumps(keygate_identity(sys.argv[1], sys.argv[2])))
except jwt.InvalidTokenError as e:
    print(json.dumps({"refused": type(e).__name__}))
`)
  const jwt = (await call(kg.url, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })).json.access_token
  t.equal((await call(kg.url, 'GET', '/printer', { token: jwt })).status, 200)
  const header = echo.seen.at(-1)!.headers['x-keygate-identity'] as string
  const verify = async (value: string, audience: string) => JSON.parse((await run(found.python, [script, value, audience])).stdout)

  const claims = await verify(header, 'echo')
  t.match(claims, { iss: 'keygate', aud: 'echo', username: BOOTSTRAP.username, auth: 'jwt' }, 'the claims of a genuine header')
  t.same(await verify(header, 'billing'), { refused: 'InvalidAudienceError' }, 'an assertion for another upstream')
  const [h, p] = header.split('.') as [string, string]
  const claimsOfBob = Buffer.from(JSON.stringify({ ...claims, username: 'bob' })).toString('base64url')
  t.same(await verify(`${h}.${claimsOfBob}.${header.split('.')[2]}`, 'echo'), { refused: 'InvalidSignatureError' }, 'claims changed after signing')
  t.not(p, claimsOfBob)
})

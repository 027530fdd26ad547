import t from 'tap'
import { BOOTSTRAP, call, keygateOnPostgres } from '../helpers/keygate.ts'

/**
 * One canonical form of a login identifier (NFKC, then one lowercasing) for storage, lookup and the attempt
 * counters: a spelling that folds differently in JavaScript and in PostgreSQL can neither log in as a locked-out
 * user nor be counted apart from the user it logs in as.
 */
const API = '/api/v1/auth'
const LIMIT = 3

t.test('no spelling of a username or email is looked up as one user and counted as another', async (t) => {
  const kg = await keygateOnPostgres('identifiers', { KEYGATE_LOGIN_MAX_ATTEMPTS: String(LIMIT), KEYGATE_TRUSTED_PROXIES: '127.0.0.0/8' })
  t.teardown(async () => { await kg.close(); await kg.db.drop() })
  const admin = (await call(kg.url, 'POST', `${API}/login`, { body: BOOTSTRAP })).json.access_token as string
  const create = (username: string, email: string) => call(kg.url, 'POST', `${API}/users`, { token: admin, body: { username, email, password: `${username} password` } })
  t.equal((await create('victim', 'victim@example.com')).status, 201)
  t.equal((await create('kim', 'kim@example.com')).status, 201)
  // Each address its own, so only the per-identifier counter is under test.
  let n = 0
  const login = (body: Record<string, unknown>) => call(kg.url, 'POST', `${API}/login`, { body, headers: { 'x-forwarded-for': `198.51.100.${++n}` } })

  await t.test('usernames outside the documented characters are refused at creation', async (t) => {
    for (const name of ['vİctim', 'vıctim', '\u212Aim', 'ｋｉｍ', 'kim\u0301', 'ki m']) {
      const res = await create(name, `other${n++}@example.com`)
      t.equal(res.status, 422, `${JSON.stringify(name)} is refused`)
      t.same(res.json.errors.map((e: { loc: string[] }) => e.loc.join('.')), ['body.username'])
    }
    t.equal((await create('VICTIM', 'victim2@example.com')).json.code, 'USER_EXISTS', 'another case of a taken name is taken')
  })

  await t.test('a locked-out user stays locked out under every spelling that reaches them', async (t) => {
    for (let i = 0; i < LIMIT; i++) t.equal((await login({ username: 'victim', password: `guess ${i}` })).status, 401)
    t.equal((await login({ username: 'victim', password: 'victim password' })).json.code, 'RATE_LIMITED', 'locked out')
    for (const spelling of ['VICTIM', 'Victim', 'ｖｉｃｔｉｍ', 'victim@example.com', 'VICTIM@EXAMPLE.COM', 'ｖｉｃｔｉｍ＠ｅｘａｍｐｌｅ．ｃｏｍ']) {
      for (const body of [{ username: spelling }, { email: spelling }]) {
        const res = await login({ ...body, password: 'victim password' })
        t.equal(res.json.code, 'RATE_LIMITED', `${JSON.stringify(body)} is counted as victim and does not log in`)
      }
    }
    const dotted = await login({ username: 'vİctim', password: 'victim password' })
    t.equal(dotted.status, 401, '"vİctim" is no one: its lowercase (i + combining dot) is not "victim"')
    t.equal(dotted.json.code, 'LOGIN_FAILED')
    const dotless = await login({ username: 'vıctim', password: 'victim password' })
    t.equal(dotless.json.code, 'LOGIN_FAILED', 'neither is the dotless "vıctim"')
  })

  await t.test('a spelling that folds to a user logs in as that user and is counted as that user', async (t) => {
    const kelvin = await login({ username: '\u212Aim', password: 'kim password' })
    t.equal(kelvin.status, 200, 'the Kelvin sign folds to "k" (NFKC) for the lookup')
    t.equal(kelvin.json.user.username, 'kim')
    const wide = await login({ email: 'ＫＩＭ＠example.com', password: 'kim password' })
    t.equal(wide.status, 200, 'a full-width email folds to the stored one')
    for (let i = 0; i < LIMIT; i++) await login({ username: '\u212AIM', password: `guess ${i}` })
    t.equal((await login({ username: 'kim', password: 'kim password' })).json.code, 'RATE_LIMITED', 'failures under the Kelvin spelling count against "kim"')
  })
})

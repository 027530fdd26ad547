import { spawn } from 'node:child_process'
import t from 'tap'
import { ROOT } from '../../scripts/entry-points.ts'
import { compiledArgs } from '../helpers/compiled.ts'
import { BOOTSTRAP, call, testEnv, refusedWithin } from '../helpers/keygate.ts'
import { freePort } from '../helpers/ports.ts'
import { testSchema } from '../helpers/postgres.ts'
import { testRedisPrefix } from '../helpers/redis.ts'

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** `promise`, or 'timeout' after `ms` (the timer does not keep the test alive once the promise settles). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), ms) })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}


t.test('npm run fleet: two gateways, the admin API and the demos as separate processes on PostgreSQL and Redis', async (t) => {
  const schema = await testSchema('fleet')
  const redis = await testRedisPrefix('fleet')
  const [g1, g2, admin, conversations, documents] = await Promise.all(Array.from({ length: 5 }, freePort))
  // Its own process group, so that whatever happens the test can take every process of the fleet down.
  const fleet = spawn(process.execPath, [...compiledArgs('fleet'), '--gateways', `${g1},${g2}`, '--admin', String(admin), '--conversations', String(conversations), '--documents', String(documents)], {
    env: { ...process.env, ...testEnv({ PORT: '', METRICS_PORT: '', DATABASE_URL: schema.url, DATABASE_SCHEMA: schema.schema, REDIS_URL: redis.url, KEYGATE_REDIS_PREFIX: redis.prefix, LOG_LEVEL: 'info' }) },
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  const output: string[] = []
  fleet.stdout!.on('data', (d: Buffer) => output.push(d.toString()))
  fleet.stderr!.on('data', (d: Buffer) => output.push(d.toString()))
  const exited = new Promise<number | null>((resolve) => fleet.once('exit', (code) => resolve(code)))
  const pids = () => [...output.join('').matchAll(/^ {2}\S+\s+http:\S+.*? pid (\d+)/gm)].map((m) => Number(m[1]))
  t.teardown(async () => {
    if (fleet.exitCode === null && fleet.signalCode === null) {
      fleet.kill('SIGTERM')
      await within(exited, 20_000)
    }
    try {
      process.kill(-fleet.pid!, 'SIGKILL')
    } catch {
      // The group is gone already: the fleet stopped everything it started.
    }
    await redis.drop()
    await schema.drop()
  })

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the fleet did not come up:\n${output.join('')}`)), 60_000)
    const check = () => {
      // The banner's last line: every process listens and every URL is printed.
      if (output.join('').includes('Ctrl-C stops everything')) {
        clearTimeout(timer)
        resolve()
      }
    }
    fleet.stdout!.on('data', check)
    void exited.then((code) => { clearTimeout(timer); reject(new Error(`the fleet exited with ${code}:\n${output.join('')}`)) })
  })
  const gateway1 = `http://127.0.0.1:${g1}`
  const gateway2 = `http://127.0.0.1:${g2}`

  await t.test('the banner names every process with its URL', async (t) => {
    const text = output.join('')
    for (const port of [g1, g2, admin, conversations, documents]) t.match(text, `http://127.0.0.1:${port}`)
    t.equal(pids().length, 5, 'five processes')
    t.ok(pids().every(alive), 'all running')
    for (const port of [g1, g2, admin, conversations, documents]) t.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200, `/healthz on ${port}`)
  })

  await t.test('a key created through gateway 1 works through gateway 2; revoked through gateway 2, gateway 1 refuses it within 1 s', async (t) => {
    const login = await call(gateway1, 'POST', '/api/v1/auth/login', { body: BOOTSTRAP })
    t.equal(login.status, 200, 'login through gateway 1')
    const jwt = login.json.access_token as string
    const key = await call(gateway1, 'POST', '/api/v1/auth/api-key', { token: jwt, body: { name: 'fleet' } })
    t.equal(key.status, 200, 'key created through gateway 1')

    const used = await call(gateway2, 'GET', '/api/v1/conversations', { token: key.json.api_key })
    t.equal(used.status, 200, 'used through gateway 2')
    t.equal(used.json.verified_identity.username, BOOTSTRAP.username, 'the conversations process verified who called')
    t.equal((await call(gateway1, 'GET', '/api/v1/conversations', { token: key.json.api_key })).status, 200, 'gateway 1 has it cached too')

    t.equal((await call(gateway2, 'DELETE', `/api/v1/auth/api-keys/${key.json.id}`, { token: jwt })).status, 200, 'revoked through gateway 2')
    const seen = await refusedWithin(gateway1, key.json.api_key, 1000)
    t.equal(seen.status, 401)
    t.equal(seen.code, 'KEY_REVOKED', `gateway 1 refused it ${seen.afterMs.toFixed(1)} ms after the revocation`)

    const me = await call(gateway2, 'GET', '/api/v1/auth/me', { token: jwt })
    t.equal(me.status, 200)
    t.equal(me.json.username, BOOTSTRAP.username, 'me through gateway 2 shows the user')
    t.equal(me.json.id, login.json.user.id)
  })

  await t.test('SIGTERM stops every process of the fleet', async (t) => {
    const started = pids()
    fleet.kill('SIGTERM')
    const code = await within(exited, 20_000)
    t.equal(code, 0, 'the fleet exits 0')
    t.same(started.filter(alive), [], 'no process of the fleet is left')
  })
})

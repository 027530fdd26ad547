import { createHash } from 'node:crypto'
import { fits, verdict, type WindowState } from './rate-limit.ts'
import { fixedVerdict, type RateCounter } from './rate-counter.ts'

/**
 * The rate counter shared by every instance: one Lua script, one round trip per request whatever the number of
 * buckets, atomic in Redis. Time is Redis' own (`TIME`), so instances whose clocks differ still count in the same
 * windows. A sliding bucket is one hash (`w` the window index, `c` and `p` its two counters) expiring two windows
 * after its last count; a quota is one counter expiring a day after its period ends. The script decides exactly
 * as `rate-limit.ts` does (`fits`), and answers the counters it read, from which the verdicts are computed here.
 *
 * Every key of one request carries the same hash tag (`{…}`, the subject the caller names), so the script runs
 * on one node of a Redis Cluster.
 */
export const TAKE_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #KEYS
local out = {now, 1}
local states = {}
for i = 1, n do
  local kind, limit, arg = ARGV[3 * i - 2], tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i])
  if kind == 's' then
    local h = redis.call('HMGET', KEYS[i], 'w', 'c', 'p')
    local win = math.floor(now / arg)
    local sw, c, p = tonumber(h[1]), tonumber(h[2]) or 0, tonumber(h[3]) or 0
    if not sw or sw < win - 1 then c = 0 p = 0 elseif sw == win - 1 then p = c c = 0 end
    local elapsed = now - win * arg
    if p * (arg - elapsed) + (c + 1) * arg > limit * arg then out[2] = 0 end
    states[i] = {win, c, p}
    out[#out + 1] = win out[#out + 1] = c out[#out + 1] = p
  else
    local c = tonumber(redis.call('GET', KEYS[i]) or '0')
    if c + 1 > limit then out[2] = 0 end
    states[i] = c
    out[#out + 1] = 0 out[#out + 1] = c out[#out + 1] = 0
  end
end
if out[2] == 1 then
  for i = 1, n do
    local arg = tonumber(ARGV[3 * i])
    if ARGV[3 * i - 2] == 's' then
      local s = states[i]
      redis.call('HSET', KEYS[i], 'w', s[1], 'c', s[2] + 1, 'p', s[3])
      redis.call('PEXPIRE', KEYS[i], 2 * arg)
    else
      redis.call('INCR', KEYS[i])
      redis.call('PEXPIREAT', KEYS[i], arg + 86400000)
    end
  end
end
return out
`

const TAKE_SHA = createHash('sha1').update(TAKE_SCRIPT).digest('hex')

/** The part of an ioredis client (standalone or Cluster) this counter uses. */
export interface RedisScriptClient {
  evalsha(sha: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>
  eval(script: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>
}

export interface RedisRateCounterOptions {
  /** Prefix of every key (KEYGATE_REDIS_PREFIX). */
  prefix: string
  /** Each round trip's duration, seconds (the limiter's Redis latency metric). */
  observe?: (seconds: number) => void
}

/**
 * @throws whatever the client throws when Redis is away or answers an error: the caller decides (it fails open).
 */
export function redisRateCounter(redis: RedisScriptClient, options: RedisRateCounterOptions): RateCounter {
  const { prefix } = options
  return {
    async take(buckets) {
      const keys = buckets.map((b) => prefix + b.key)
      const args: Array<string | number> = []
      for (const b of buckets) {
        if (b.kind === 'sliding') args.push('s', b.policy.limit, b.policy.windowMs)
        else args.push('f', b.limit, b.periodEnd)
      }
      const started = performance.now()
      let reply: unknown
      try {
        reply = await redis.evalsha(TAKE_SHA, keys.length, ...keys, ...args)
      } catch (err) {
        // A Redis that restarted (or a node that never saw it) has no copy yet: send the script once.
        if (!String((err as Error)?.message ?? '').startsWith('NOSCRIPT')) throw err
        reply = await redis.eval(TAKE_SCRIPT, keys.length, ...keys, ...args)
      } finally {
        options.observe?.((performance.now() - started) / 1000)
      }
      const out = (reply as Array<number | string>).map(Number)
      const now = out[0]!
      const verdicts = buckets.map((b, i) => {
        const [window, current, previous] = [out[2 + 3 * i]!, out[3 + 3 * i]!, out[4 + 3 * i]!]
        if (b.kind === 'fixed') return fixedVerdict(b, current, now)
        const s: WindowState = { window, current, previous }
        return verdict(b.policy, s, now)
      })
      const allowed = out[1] === 1
      // The script and `fits` decide alike; were they ever to differ, the script's decision (what was counted) stands.
      if (allowed !== buckets.every((b, i) => b.kind === 'fixed' ? verdicts[i]!.allowed : fits(b.policy, { window: out[2 + 3 * i]!, current: out[3 + 3 * i]!, previous: out[4 + 3 * i]! }, now))) {
        return { allowed, verdicts: verdicts.map((v) => ({ ...v, allowed, ...(allowed ? {} : { remaining: 0, retryAfterMs: Math.max(1, v.retryAfterMs) }) })), now }
      }
      return { allowed, verdicts, now }
    },
  }
}

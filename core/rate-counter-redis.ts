import { createHash } from 'node:crypto'
import { sliceMs, SUB_WINDOWS, verdict, type BucketVerdict } from './rate-limit.ts'
import { fixedVerdict, type Bucket, type RateCounter, type TakeResult } from './rate-counter.ts'

/**
 * The rate counter shared by every instance: one Lua script, one round trip per request whatever the number of
 * buckets, atomic in Redis. Time is Redis' own (`TIME`), so instances whose clocks differ still count in the same
 * slices. A sliding bucket is one hash (field: a slice number, value: its count; slices out of the window are
 * deleted as they are met) expiring a window and a slice after its last count; a quota is one counter expiring a
 * day after its period ends. The script decides exactly as `rate-limit.ts` does (`fits`), and answers the
 * counts it read, from which the verdicts are computed here.
 *
 * A key's hash tag (`{…}`) names its subject (a user, an address). Buckets of one request with one tag go in one
 * script, decided together, on one node of a Redis Cluster. Buckets with different tags (a per-address route
 * limit on a key with limits of its own, the one such case) go in one script per tag, in turn, stopping at the
 * first refusal; what the earlier scripts counted is then given back (`RELEASE_SCRIPT`), so a refused request
 * spends nothing there either, though another request may see it counted in between.
 */
export const TAKE_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[1])
local out = {now, 1}
local cur = {}
for i = 1, #KEYS do
  local b = 3 * i - 1
  local limit, arg = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2])
  if ARGV[b] == 's' then
    local current = math.floor(now / (arg / n))
    local h = redis.call('HGETALL', KEYS[i])
    local used, kept, stale = 0, {}, {}
    for j = 1, #h, 2 do
      local m, c = tonumber(h[j]), tonumber(h[j + 1])
      if m >= current - n then
        used = used + c
        kept[#kept + 1] = m
        kept[#kept + 1] = c
      else
        stale[#stale + 1] = h[j]
      end
    end
    if #stale > 0 then redis.call('HDEL', KEYS[i], unpack(stale)) end
    if used + 1 > limit then out[2] = 0 end
    cur[i] = current
    out[#out + 1] = #kept / 2
    for j = 1, #kept do out[#out + 1] = kept[j] end
  else
    local c = tonumber(redis.call('GET', KEYS[i]) or '0')
    if c + 1 > limit then out[2] = 0 end
    out[#out + 1] = 1
    out[#out + 1] = 0
    out[#out + 1] = c
  end
end
if out[2] == 1 then
  for i = 1, #KEYS do
    local b = 3 * i - 1
    local arg = tonumber(ARGV[b + 2])
    if ARGV[b] == 's' then
      redis.call('HINCRBY', KEYS[i], cur[i], 1)
      redis.call('PEXPIRE', KEYS[i], arg + math.ceil(arg / n))
    else
      redis.call('INCR', KEYS[i])
      redis.call('PEXPIREAT', KEYS[i], arg + 86400000)
    end
  end
end
return out
`

const TAKE_SHA = createHash('sha1').update(TAKE_SCRIPT).digest('hex')

/** Gives back one counted request per key: ARGV[i] is the slice it was counted in, or 'f' for a quota counter. */
export const RELEASE_SCRIPT = `
for i = 1, #KEYS do
  if ARGV[i] == 'f' then
    if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
  elseif tonumber(redis.call('HGET', KEYS[i], ARGV[i]) or '0') > 0 then
    redis.call('HINCRBY', KEYS[i], ARGV[i], -1)
  end
end
return 0
`

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
  const one = takeInOneScript(redis, options)
  return {
    async take(buckets) {
      const first = hashTag(buckets[0]?.key ?? '')
      if (buckets.every((b) => hashTag(b.key) === first)) return one(buckets)
      const groups = new Map<string, Bucket[]>()
      for (const b of buckets) {
        const tag = hashTag(b.key)
        groups.set(tag, [...(groups.get(tag) ?? []), b])
      }
      const verdicts = new Map<Bucket, BucketVerdict>()
      let now = 0
      let allowed = true
      const counted: Array<{ group: Bucket[]; now: number }> = []
      for (const group of groups.values()) {
        const taken = await one(group)
        now = taken.now
        group.forEach((b, i) => verdicts.set(b, taken.verdicts[i]!))
        if (!taken.allowed) {
          allowed = false
          break
        }
        counted.push({ group, now: taken.now })
      }
      if (!allowed) {
        for (const c of counted) {
          const slices = c.group.map((b) => (b.kind === 'fixed' ? 'f' : String(Math.floor(c.now / sliceMs(b.policy)))))
          // Best effort: the refusal stands whether or not the give-back reaches Redis.
          await redis.eval(RELEASE_SCRIPT, c.group.length, ...c.group.map((b) => prefix + b.key), ...slices).catch(() => undefined)
        }
      }
      // Buckets of groups not asked (after a refusal) are reported as they were not counted: allowed, full.
      return { allowed, now, verdicts: buckets.map((b) => verdicts.get(b) ?? notAsked(b)) }
    },
  }
}

function hashTag(key: string): string {
  const open = key.indexOf('{')
  const close = open < 0 ? -1 : key.indexOf('}', open + 1)
  return close > open + 1 ? key.slice(open + 1, close) : key
}

function notAsked(b: Bucket): BucketVerdict {
  const limit = b.kind === 'sliding' ? b.policy.limit : b.limit
  const windowMs = b.kind === 'sliding' ? b.policy.windowMs : b.periodEnd - b.periodStart
  return { allowed: true, limit, windowMs, remaining: limit, retryAfterMs: 0, resetMs: windowMs }
}

function takeInOneScript(redis: RedisScriptClient, { prefix, observe }: RedisRateCounterOptions): (buckets: readonly Bucket[]) => Promise<TakeResult> {
  return async (buckets) => {
    const keys = buckets.map((b) => prefix + b.key)
    const args: Array<string | number> = [SUB_WINDOWS]
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
      observe?.((performance.now() - started) / 1000)
    }
    const out = (reply as Array<number | string>).map(Number)
    const now = out[0]!
    const allowed = out[1] === 1
    let at = 2
    const verdicts = buckets.map((b) => {
      const pairs = out[at]!
      const s: Array<[number, number]> = []
      for (let j = 0; j < pairs; j++) s.push([out[at + 1 + 2 * j]!, out[at + 2 + 2 * j]!])
      at += 1 + 2 * pairs
      if (b.kind === 'fixed') return fixedVerdict(b, s[0]![1], now)
      s.sort((x, y) => x[0] - y[0])
      return verdict(b.policy, s, now)
    })
    // The script decides with the same arithmetic; were they ever to differ, its decision (what was counted) stands.
    if (allowed !== verdicts.every((v) => v.allowed)) {
      return { allowed, verdicts: verdicts.map((v) => (allowed ? { ...v, allowed } : { ...v, allowed, remaining: 0, retryAfterMs: Math.max(1, v.retryAfterMs) })), now }
    }
    return { allowed, verdicts, now }
  }
}

import { createHash } from 'node:crypto'
import type { Bucket } from './rate-counter.ts'
import { SUB_WINDOWS, type WindowState } from './rate-limit.ts'

/**
 * The Lua side of `rate-counter-redis.ts`. `TAKE_SCRIPT` decides one request against a group of buckets (one hash
 * tag) exactly as `rate-limit.ts` does (`fits`), counts it in all of them when all allow it, and answers the
 * counts it read (from which the verdicts are computed in the gateway). Per bucket it is given the units wanted
 * (a lease: it grants that many, at most what is left, at least the request's own) and the units of the bucket's
 * previous lease given back first. `RELEASE_SCRIPT` gives back units without asking for any.
 */
export const TAKE_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[1])
local out = {now, 1}
local cur, grant = {}, {}
for i = 1, #KEYS do
  local b = 6 * i - 4
  local limit, arg, want = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  local back, backUnits = ARGV[b + 4], tonumber(ARGV[b + 5])
  local used = 0
  if ARGV[b] == 's' then
    if backUnits > 0 then
      local c = tonumber(redis.call('HGET', KEYS[i], back) or '0')
      if c > backUnits then redis.call('HINCRBY', KEYS[i], back, -backUnits) elseif c > 0 then redis.call('HDEL', KEYS[i], back) end
    end
    local current = math.floor(now / (arg / n))
    local h = redis.call('HGETALL', KEYS[i])
    local kept, stale = {}, {}
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
    cur[i] = current
    out[#out + 1] = 0
    out[#out + 1] = #kept / 2
    for j = 1, #kept do out[#out + 1] = kept[j] end
  else
    if backUnits > 0 then
      local c = tonumber(redis.call('GET', KEYS[i]) or '0')
      if c > 0 then redis.call('DECRBY', KEYS[i], math.min(c, backUnits)) end
    end
    used = tonumber(redis.call('GET', KEYS[i]) or '0')
    out[#out + 1] = 0
    out[#out + 1] = 1
    out[#out + 1] = 0
    out[#out + 1] = used
  end
  if used + 1 > limit then out[2] = 0 end
  grant[i] = math.max(1, math.min(want, limit - used))
end
if out[2] == 1 then
  local at = 3
  for i = 1, #KEYS do
    local b = 6 * i - 4
    local arg = tonumber(ARGV[b + 2])
    out[at] = grant[i]
    at = at + 2 + 2 * out[at + 1]
    if ARGV[b] == 's' then
      redis.call('HINCRBY', KEYS[i], cur[i], grant[i])
      redis.call('PEXPIRE', KEYS[i], arg + math.ceil(arg / n))
    else
      redis.call('INCRBY', KEYS[i], grant[i])
      redis.call('PEXPIREAT', KEYS[i], arg + 86400000)
    end
  end
end
return out
`

const TAKE_SHA = createHash('sha1').update(TAKE_SCRIPT).digest('hex')

/**
 * Gives back units counted and not spent: ARGV[2i - 1] is the slice they were counted in (or 'f' for a quota
 * counter), ARGV[2i] how many. Never below zero, never on a key or slice already gone.
 */
export const RELEASE_SCRIPT = `
for i = 1, #KEYS do
  local units = tonumber(ARGV[2 * i])
  if ARGV[2 * i - 1] == 'f' then
    local c = tonumber(redis.call('GET', KEYS[i]) or '0')
    if c > 0 then redis.call('DECRBY', KEYS[i], math.min(c, units)) end
  else
    local c = tonumber(redis.call('HGET', KEYS[i], ARGV[2 * i - 1]) or '0')
    if c > units then redis.call('HINCRBY', KEYS[i], ARGV[2 * i - 1], -units) elseif c > 0 then redis.call('HDEL', KEYS[i], ARGV[2 * i - 1]) end
  end
end
return 0
`

/** The part of an ioredis client (standalone or Cluster) this counter uses. */
export interface RedisScriptClient {
  evalsha(sha: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>
  eval(script: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>
}

export interface ScriptOptions {
  /** Prefix of every key (KEYGATE_REDIS_PREFIX). */
  prefix: string
  /** Each round trip's duration, seconds (the limiter's Redis latency metric). */
  observe?: (seconds: number) => void
}

/** One bucket asked of the script: the units wanted, and the units of its previous lease given back. */
export interface Ask { readonly b: Bucket; readonly want: number; readonly back?: { readonly slice: number; readonly units: number } }
export interface Answer { readonly allowed: boolean; readonly now: number; readonly granted: readonly number[]; readonly before: readonly WindowState[] }

export function askInOneScript(redis: RedisScriptClient, { prefix, observe }: ScriptOptions): (group: readonly Ask[]) => Promise<Answer> {
  return async (group) => {
    const keys = group.map((a) => prefix + a.b.key)
    const args: Array<string | number> = [SUB_WINDOWS]
    for (const { b, want, back } of group) {
      if (b.kind === 'sliding') args.push('s', b.policy.limit, b.policy.windowMs)
      else args.push('f', b.limit, b.periodEnd)
      args.push(want, back ? String(back.slice) : '0', back ? back.units : 0)
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
    const granted: number[] = []
    const before: WindowState[] = []
    let at = 2
    for (let i = 0; i < group.length; i++) {
      granted.push(out[at]!)
      const pairs = out[at + 1]!
      const s: Array<[number, number]> = []
      for (let j = 0; j < pairs; j++) s.push([out[at + 2 + 2 * j]!, out[at + 3 + 2 * j]!])
      at += 2 + 2 * pairs
      s.sort((x, y) => x[0] - y[0])
      before.push(s)
    }
    return { allowed: out[1] === 1, now: out[0]!, granted, before }
  }
}

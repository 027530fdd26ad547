import { readFileSync } from 'node:fs'
import { parseFileConfig } from '../config/load.ts'
import { ChangePasswordRequest, CreateApiKeyRequest, CreateUserRequest } from '../admin-api/schemas.ts'
import { signingKeyStore } from '../core/signing-key-store.ts'
import { userStore } from '../core/user-store.ts'
import { QUOTA_MAX } from '../core/key-limits.ts'
import { parseRateLimit } from '../core/rate-limit.ts'
import { integerOption, required, UsageError, uuidOption, type OptionSpec, type OptionValues } from './args.ts'
import { Refusal, type Context } from './database.ts'

/** What a command reads and writes: stdout for results only, stderr for everything said along the way. */
export interface Io {
  out(text: string): void
  /** Raw text on stderr (errors, usage). */
  err(text: string): void
  /** One line on stderr, prefixed `keygate: `. */
  say(line: string): void
  readSecret(prompt: string, options?: { confirm?: string }): Promise<string>
}

export interface Command<O extends OptionSpec = OptionSpec> {
  /** The arguments after the command's name, as the usage shows them. */
  synopsis: string
  about: string
  options: O
  positionals?: number
  /** Opens the database (and takes `--init`). */
  database: boolean
  run(input: { name: string; values: OptionValues<O>; positionals: string[]; io: Io; env: NodeJS.ProcessEnv; open: <T>(fn: (ctx: Context) => Promise<T>) => Promise<T> }): Promise<void>
}

const command = <O extends OptionSpec>(c: Command<O>): Command => c as unknown as Command
const CLI = { address: 'cli' }
const DAY_MS = 86_400_000

/** "field: problem; field: problem" from a zod error, for input read from stdin or options. */
function problems(issues: ReadonlyArray<{ path: PropertyKey[]; message: string }>): string {
  return issues.map((i) => `${i.path.map(String).join('.') || 'value'}: ${i.message}`).join('; ')
}

async function userByName(ctx: Context, username: string) {
  const found = await userStore.findForLogin(ctx.db, { username })
  if (!found) throw new Refusal(`no user named ${username}`)
  return found
}

async function newPassword(io: Io): Promise<string> {
  const password = await io.readSecret('New password: ', { confirm: 'Repeat new password: ' })
  const checked = ChangePasswordRequest.shape.new_password.safeParse(password)
  if (!checked.success) throw new Refusal(`password: ${checked.error.issues.map((i) => i.message).join('; ')}`)
  return checked.data
}

/** Every command, by name; `usage()` lists them in this order. */
export const COMMANDS: Readonly<Record<string, Command>> = {
  'users create': command({
    synopsis: '--username NAME --email EMAIL [--full-name NAME] [--superuser]',
    about: 'Creates a user; the password from a prompt, or the first line of stdin.',
    options: { username: { type: 'string' }, email: { type: 'string' }, 'full-name': { type: 'string' }, superuser: { type: 'boolean' } },
    database: true,
    async run({ name, values, io, open }) {
      const username = required(name, values.username, 'username')
      const email = required(name, values.email, 'email')
      const password = await io.readSecret('Password: ', { confirm: 'Repeat password: ' })
      const input = CreateUserRequest.safeParse({ username, password, email, full_name: values['full-name'], is_superuser: values.superuser })
      if (!input.success) throw new Refusal(problems(input.error.issues))
      const d = input.data
      await open(async (ctx) => {
        const user = await ctx.accounts.createUser({ username: d.username, password: d.password, email: d.email, profile: { full_name: d.full_name }, isSuperuser: d.is_superuser }, CLI)
        io.out(`created user ${user.username} (${user.id})${user.is_superuser ? ' as superuser' : ''}\n`)
      })
    },
  }),
  'users list': command({
    synopsis: '',
    about: 'One line per user: id, username, and "superuser" or "inactive" when they apply.',
    options: {},
    database: true,
    async run({ io, open }) {
      await open(async (ctx) => {
        for (const u of await userStore.list(ctx.db, 1000, 0)) io.out(`${u.id}  ${u.username}${u.is_superuser ? '  superuser' : ''}${u.is_active ? '' : '  inactive'}\n`)
      })
    },
  }),
  'users set-password': command({
    synopsis: '--username NAME',
    about: 'Sets a new password (prompt or stdin); every session and API key of the user ends, on every gateway.',
    options: { username: { type: 'string' } },
    database: true,
    async run({ name, values, io, open }) {
      const username = required(name, values.username, 'username')
      const password = await newPassword(io)
      await open(async (ctx) => {
        const user = await userByName(ctx, username)
        const ended = await ctx.accounts.setPassword(user.id, password, CLI, { revokeKeys: true })
        io.out(`password of ${user.username} set: ${ended.sessions_ended} sessions ended, ${ended.keys_revoked} API keys revoked\n`)
      })
    },
  }),
  ...Object.fromEntries((['deactivate', 'activate'] as const).map((verb) => [`users ${verb}`, command({
    synopsis: '--username NAME',
    about: verb === 'deactivate' ? 'Ends every session and API key of the user; the user cannot log in.' : 'Lets the user log in again (revoked keys stay revoked).',
    options: { username: { type: 'string' } },
    database: true,
    async run({ name, values, io, open }) {
      const username = required(name, values.username, 'username')
      await open(async (ctx) => {
        const user = await userByName(ctx, username)
        await ctx.accounts.setActive(user.id, verb === 'activate', CLI)
        io.out(`${verb}d ${user.username}${verb === 'deactivate' ? ': every session and API key of the user ended' : ''}\n`)
      })
    },
  })])),
  'keys list': command({
    synopsis: '--username NAME',
    about: 'Each key of the user: id, display form (never the secret), state and name.',
    options: { username: { type: 'string' } },
    database: true,
    async run({ name, values, io, open }) {
      const username = required(name, values.username, 'username')
      await open(async (ctx) => {
        const user = await userByName(ctx, username)
        for (const k of await ctx.keys.list(user.id)) {
          const state = k.revoked_at ? 'revoked' : k.expires_at && k.expires_at.getTime() <= Date.now() ? 'expired' : 'active'
          io.out(`${k.id}  ${k.display}  ${state}  ${JSON.stringify(k.name)}\n`)
        }
      })
    },
  }),
  'keys create': command({
    synopsis: '--username NAME --name KEY_NAME [--scopes SCOPE,…] [--expires-in-days DAYS] [--rate-limit LIMIT/WINDOW] [--daily-quota N] [--monthly-quota N]',
    about: 'Creates an API key; prints the key, and nothing else, on stdout (its id on stderr).',
    options: { username: { type: 'string' }, name: { type: 'string' }, scopes: { type: 'string' }, 'expires-in-days': { type: 'string' }, 'rate-limit': { type: 'string' }, 'daily-quota': { type: 'string' }, 'monthly-quota': { type: 'string' } },
    database: true,
    async run({ name, values, io, open }) {
      const username = required(name, values.username, 'username')
      const days = values['expires-in-days'] === undefined ? undefined : integerOption(name, values['expires-in-days'], 'expires-in-days', 1, 3650)
      const scopes = values.scopes === undefined ? undefined : values.scopes.split(',').map((s) => s.trim()).filter(Boolean)
      const rateLimit = values['rate-limit'] === undefined ? undefined : parseRateLimit(values['rate-limit'])
      if (rateLimit === undefined && values['rate-limit'] !== undefined) throw new UsageError(`${name}: --rate-limit expects LIMIT/WINDOW such as 100/min, 1000/hour or 100/60s`, name)
      const daily = values['daily-quota'] === undefined ? undefined : integerOption(name, values['daily-quota'], 'daily-quota', 1, QUOTA_MAX)
      const monthly = values['monthly-quota'] === undefined ? undefined : integerOption(name, values['monthly-quota'], 'monthly-quota', 1, QUOTA_MAX)
      const quota = daily === undefined && monthly === undefined ? undefined : { ...(daily === undefined ? {} : { daily }), ...(monthly === undefined ? {} : { monthly }) }
      const input = CreateApiKeyRequest.safeParse({ name: required(name, values.name, 'name'), scopes, expires_in_days: days, rate_limit: rateLimit ?? undefined, quota })
      if (!input.success) throw new Refusal(problems(input.error.issues))
      await open(async (ctx) => {
        const user = await userByName(ctx, username)
        if (!user.is_active) throw new Refusal(`${user.username} is deactivated: activate the user first`)
        const expiresAt = input.data.expires_in_days === undefined ? null : new Date(Date.now() + input.data.expires_in_days * DAY_MS)
        const { row, key } = await ctx.keys.create(user.id, { name: input.data.name, scopes: input.data.scopes, expiresAt, rateLimit: input.data.rate_limit ?? null, quota: input.data.quota ?? null }, CLI)
        io.say(`created key ${row.id} (${row.display}) for ${user.username}${expiresAt ? `, expires ${expiresAt.toISOString()}` : ''}`)
        io.out(`${key}\n`)
      })
    },
  }),
  'keys revoke': command({
    synopsis: '--username NAME --id KEY_ID',
    about: 'Revokes one active key of the user; every gateway refuses it at once.',
    options: { username: { type: 'string' }, id: { type: 'string' } },
    database: true,
    async run({ name, values, io, open }) {
      const username = required(name, values.username, 'username')
      const id = uuidOption(name, required(name, values.id, 'id'), 'id')
      await open(async (ctx) => {
        const user = await userByName(ctx, username)
        if (!(await ctx.keys.revoke(user.id, id, CLI))) throw new Refusal(`${user.username} has no active key ${id}`)
        io.out(`revoked ${id}\n`)
      })
    },
  }),
  ...Object.fromEntries((['list', 'rotate'] as const).map((verb) => [`signing-keys ${verb}`, command({
    synopsis: verb === 'rotate' ? '[--force]' : '',
    about: verb === 'rotate' ? 'The next key signs from now on; a new next key is published.' : 'The published keys: current (signs), next, previous.',
    options: verb === 'rotate' ? { force: { type: 'boolean' } } : {},
    database: true,
    async run({ values, io, open }) {
      await open(async ({ db, env, bus }) => {
        if (env.KEYGATE_SIGNING_KEY || env.KEYGATE_SIGNING_KEY_FILE) throw new Refusal('the signing keys come from configuration (KEYGATE_SIGNING_KEY or KEYGATE_SIGNING_KEY_FILE): rotate them there')
        await signingKeyStore.ensure(db, env.KEYGATE_SIGNING_ALG)
        if (verb === 'rotate') {
          const kid = await signingKeyStore.rotate(db, env.KEYGATE_SIGNING_ALG, new Date(), { leadSec: env.KEYGATE_SIGNING_KEY_LEAD_SEC, force: (values as { force?: boolean }).force })
          await bus.publish({ kind: 'signing-keys' })
          io.out(`rotated: ${kid} signs now; the previous key stays published for ${env.KEYGATE_IDENTITY_TTL + 60}s, a new next key is published\n`)
        }
        const keys = await signingKeyStore.published(db, new Date(), env.KEYGATE_IDENTITY_TTL + 60)
        keys.forEach((k, i) => io.out(`${k.kid}  ${k.alg}  ${i === 0 ? 'current (signs)' : i === 1 ? 'next' : 'previous'}\n`))
      })
    },
  })])),
  'config check': command({
    synopsis: 'FILE',
    about: 'Validates a route file without starting anything or opening the database.',
    options: {},
    positionals: 1,
    database: false,
    async run({ name, positionals, io, env }) {
      const file = positionals[0]
      if (!file) throw new UsageError(`${name} needs a FILE`, name)
      let text: string
      try {
        text = readFileSync(file, 'utf8')
      } catch (err) {
        throw new Refusal(`${file}: cannot read (${(err as NodeJS.ErrnoException).code})`)
      }
      const { problems: found } = parseFileConfig(text, file, env)
      if (found.length) throw new Refusal(`${file} is invalid:\n  - ${found.join('\n  - ')}`)
      io.out(`${file}: ok\n`)
    },
  }),
}

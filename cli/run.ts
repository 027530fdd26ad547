import { loadEnv, withoutEmpty } from '../config/load.ts'
import { KeygateError } from '../core/errors.ts'
import { VERSION } from '../core/version.ts'
import { parseOptions, UsageError } from './args.ts'
import { COMMANDS, type Command, type Io } from './commands.ts'
import { withDatabase } from './database.ts'

/**
 * The operator's CLI (a composition root like gateway/main.ts; `keygate.ts` runs it). It reads its settings
 * through the gateway's own loader (config/load.ts), so it opens the database the gateway opens; it says on
 * stderr which one.
 * Revocations go out on the gateways' own transport (Redis pub/sub with REDIS_URL, else LISTEN/NOTIFY on a
 * PostgreSQL server), so running gateways drop them at once. Passwords are never taken from argv (they would
 * land in shell history and `ps`). Exit status: 0 done, 1 refused, 2 a mistake in the command line.
 */
const RUN = 'npm run keygate --'

function line(name: string, c: Command): string {
  return `  ${RUN} ${name}${c.synopsis ? ` ${c.synopsis}` : ''}${c.database ? ' [--init]' : ''}\n      ${c.about}`
}

export function usage(only?: string): string {
  const names = Object.keys(COMMANDS).filter((n) => !only || n === only || n.startsWith(`${only} `))
  const lines = names.map((n) => line(n, COMMANDS[n]!)).join('\n')
  if (only) return `usage:\n${lines}\n`
  return `usage:\n${lines}
  ${RUN} help | --help | -h      this text (also COMMAND --help)
  ${RUN} --version               Keygate's version

Settings come from the gateway's environment variables (DATABASE_URL, DATABASE_SCHEMA, KEYGATE_DATA_DIR,
REDIS_URL, KEYGATE_REDIS_PREFIX, ...). --init: create a new, empty embedded database when KEYGATE_DATA_DIR
holds none (without it, the CLI refuses).
`
}

async function main(argv: readonly string[], io: Io, env: NodeJS.ProcessEnv): Promise<void> {
  const [first, second] = argv
  if (first === undefined) throw new UsageError('a command is needed')
  if (first === 'help' || first === '--help' || first === '-h') {
    const topic = argv.slice(1).join(' ')
    if (topic && !Object.keys(COMMANDS).some((n) => n === topic || n.startsWith(`${topic} `))) throw new UsageError(`no command "${topic}"`)
    io.out(usage(topic || undefined))
    return
  }
  if (first === '--version' || first === '-V' || first === 'version') {
    if (argv.length > 1) throw new UsageError(`${first} takes no arguments`)
    io.out(`keygate ${VERSION}\n`)
    return
  }
  if (first.startsWith('-')) throw new UsageError(`unknown option ${first}; options come after the command (${RUN} COMMAND --help)`)
  const name = `${first} ${second ?? ''}`.trim()
  const cmd = COMMANDS[name]
  if (!cmd) {
    const group = Object.keys(COMMANDS).some((n) => n.startsWith(`${first} `))
    throw new UsageError(second === undefined && group ? `${first} needs a subcommand` : `unknown command "${name}"`, group ? first : undefined)
  }
  const spec = cmd.database ? { ...cmd.options, init: { type: 'boolean' as const } } : cmd.options
  const { values, positionals, help } = parseOptions(name, argv.slice(2), spec, cmd.positionals)
  if (help) {
    io.out(usage(name))
    return
  }
  const open = <T>(fn: Parameters<typeof withDatabase<T>>[2]) => withDatabase(loadEnv(withoutEmpty(env)), { init: values.init === true, say: io.say }, fn)
  await cmd.run({ name, values, positionals, io, env, open })
}

/**
 * Runs one command line with `io` and the environment `env`; resolves to the exit status: 0 done, 1 refused,
 * 2 a mistake in the command line (with the command's usage on stderr). Never throws.
 */
export async function runCli(argv: readonly string[], io: Io, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    await main(argv, io, env)
    return 0
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`keygate: ${err.message}\n${err.topic ? `\n${usage(err.topic)}` : `see: ${RUN} --help\n`}`)
      return 2
    }
    const message = err instanceof KeygateError && err.code === 'USER_EXISTS' ? 'a user with this username or email already exists'
      : err instanceof KeygateError ? `${err.code}: ${err.message}`
        : err instanceof Error ? err.message
          : String(err)
    io.err(`keygate: ${message}\n`)
    return 1
  }
}

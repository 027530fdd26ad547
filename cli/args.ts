import { parseArgs } from 'node:util'

/** A mistake in the command line (unknown command or option, missing or malformed argument): exit status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
  /** The command (or group) whose usage helps: `keys revoke`, `keys`. */
  constructor(message: string, readonly topic?: string) {
    super(message)
  }
}

export type OptionSpec = Readonly<Record<string, { type: 'string' | 'boolean' }>>
export type OptionValues<O extends OptionSpec> = { [K in keyof O]?: O[K]['type'] extends 'string' ? string : boolean }

/**
 * The options of `command` (`users create`) in `args`, against `spec`; `--help` is always known. Refuses, with
 * a UsageError naming it, an unknown option, a string option without its value, an option given twice and any
 * argument that is not an option (beyond `positionals` of them).
 */
export function parseOptions<O extends OptionSpec>(command: string, args: readonly string[], spec: O, positionals = 0): { values: OptionValues<O>; positionals: string[]; help: boolean } {
  const known = Object.keys(spec).map((k) => `--${k}`)
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { ...spec, help: { type: 'boolean', short: 'h' } }
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[]; tokens?: Array<{ kind: string; name?: string }> }
  try {
    parsed = parseArgs({ args: [...args], options, strict: true, allowPositionals: true, tokens: true })
  } catch (err) {
    const code = (err as { code?: string }).code
    const name = /'(-[^']*)'/.exec((err as Error).message)?.[1] ?? '?'
    const choices = known.length ? `its options are ${known.join(', ')}` : 'it takes no options'
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new UsageError(`${command}: unknown option ${name}; ${choices}`, command)
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') throw new UsageError(`${command}: option ${name.split(' ')[0]} ${spec[name.replace(/^--?/, '').split(' ')[0]!]?.type === 'boolean' ? 'takes no value' : 'needs a value'}`, command)
    throw new UsageError(`${command}: ${(err as Error).message}`, command)
  }
  const seen = new Set<string>()
  for (const token of parsed.tokens ?? []) {
    if (token.kind !== 'option') continue
    if (seen.has(token.name!)) throw new UsageError(`${command}: option --${token.name} is given twice`, command)
    seen.add(token.name!)
  }
  const help = parsed.values.help === true
  if (!help && parsed.positionals.length > positionals) throw new UsageError(`${command}: unexpected argument ${JSON.stringify(parsed.positionals[positionals])}`, command)
  const { help: _, ...values } = parsed.values
  return { values: values as unknown as OptionValues<O>, positionals: parsed.positionals, help }
}

/** The value of a required option, or a UsageError naming it. */
export function required(command: string, value: string | undefined, option: string): string {
  if (value === undefined || value === '') throw new UsageError(`${command} needs --${option}`, command)
  return value
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * An id as `keys list` and `users list` print it (a UUID), or a UsageError. The value is not repeated in the
 * message: a secret pasted by mistake (an API key instead of its id) must not land in a terminal log.
 */
export function uuidOption(command: string, value: string, option: string): string {
  if (!UUID.test(value)) throw new UsageError(`${command}: --${option} is not an id: expected a UUID such as 0b7e4c1a-5f2d-4c8e-9a61-2f0d3b9c7e15, as \`keys list\` prints it`, command)
  return value.toLowerCase()
}

/** A whole number from `min` to `max`, or a UsageError. */
export function integerOption(command: string, value: string, option: string, min: number, max: number): number {
  const n = Number(value)
  if (!/^\d+$/.test(value) || n < min || n > max) throw new UsageError(`${command}: --${option} expects a whole number from ${min} to ${max}`, command)
  return n
}

import t from 'tap'
import { integerOption, parseOptions, required, UsageError, uuidOption } from '../../../cli/args.ts'
import { COMMANDS } from '../../../cli/commands.ts'

/** The UsageError `fn` throws (it must throw one). */
function usageError(fn: () => unknown): UsageError {
  try {
    fn()
  } catch (err) {
    if (err instanceof UsageError) return err
    throw err
  }
  throw new Error('no UsageError thrown')
}

t.test('every command refuses an unknown option and names its own options', async (t) => {
  for (const [name, command] of Object.entries(COMMANDS)) {
    const err = usageError(() => parseOptions(name, ['--bogus'], command.options, command.positionals))
    t.match(err.message, `${name}: unknown option --bogus; `, name)
    t.equal(err.topic, name)
    for (const option of Object.keys(command.options)) t.match(err.message, `--${option}`, `${name} lists --${option}`)
  }
})

t.test('options are parsed strictly: values, flags, repeats, stray arguments and --help', async (t) => {
  const spec = { username: { type: 'string' }, force: { type: 'boolean' } } as const
  t.same(parseOptions('x y', ['--username', 'bob', '--force'], spec).values, { username: 'bob', force: true })
  t.match(usageError(() => parseOptions('x y', ['--username'], spec)).message, 'x y: option --username needs a value')
  t.match(usageError(() => parseOptions('x y', ['--force=yes'], spec)).message, 'x y: option --force takes no value')
  t.match(usageError(() => parseOptions('x y', ['--force', '--force'], spec)).message, 'x y: option --force is given twice')
  t.match(usageError(() => parseOptions('x y', ['stray'], spec)).message, 'x y: unexpected argument "stray"')
  t.match(usageError(() => parseOptions('x y', ['-z'], spec)).message, 'x y: unknown option -z')
  t.same(parseOptions('x y', ['FILE'], spec, 1).positionals, ['FILE'], 'positionals up to the number allowed')
  t.equal(parseOptions('x y', ['--help'], spec).help, true)
  t.equal(parseOptions('x y', ['-h', 'anything'], spec).help, true, '--help wins over a stray argument')
})

t.test('ids, numbers and required options are checked before anything runs', async (t) => {
  t.equal(uuidOption('keys revoke', '0B7E4C1A-5F2D-4C8E-9A61-2F0D3B9C7E15', 'id'), '0b7e4c1a-5f2d-4c8e-9a61-2f0d3b9c7e15')
  for (const bad of ['42', 'sk_live_abc', '0b7e4c1a5f2d4c8e9a612f0d3b9c7e15', '0b7e4c1a-5f2d-4c8e-9a61-2f0d3b9c7e15x']) {
    const err = usageError(() => uuidOption('keys revoke', bad, 'id'))
    t.match(err.message, 'keys revoke: --id is not an id', bad)
    t.notMatch(err.message, bad, 'the value is not repeated')
  }
  t.equal(integerOption('c', '30', 'expires-in-days', 1, 3650), 30)
  for (const bad of ['0', '3651', '1.5', '-1', '1e3', '']) t.throws(() => integerOption('c', bad, 'expires-in-days', 1, 3650), UsageError, JSON.stringify(bad))
  t.equal(required('c', 'v', 'name'), 'v')
  t.match(usageError(() => required('keys create', undefined, 'name')).message, 'keys create needs --name')
})

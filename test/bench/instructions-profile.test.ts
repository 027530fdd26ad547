import t from 'tap'
import { parsePerfMap, profile, resolver, selfCosts } from '../../bench/instructions-profile.ts'

// A dump as callgrind writes one (names compressed to ids after their first use), trimmed to what matters.
const dump = [
  'version: 1',
  'events: Ir',
  'fl=(1) ???',
  'fn=(1) 0x0000000000001010',
  '0 500',
  'cfl=(1)',
  'cfn=(2) Builtins_LoadIC',
  'calls=3 0',
  '0 9000',
  '* 100',
  'fn=(2)',
  '0 300',
  'fn=(3) 0x0000000000002008',
  '0 40',
  'fn=(1)',
  '+2 60',
  'totals: 1000',
].join('\n')

t.test('a function\'s own cost leaves out what its calls cost, and adds up every line of its own', async (t) => {
  const costs = selfCosts(dump)
  t.equal(costs.get('0x0000000000001010'), 660, '500 + 100 + 60; the 9000 of the call to LoadIC is LoadIC\'s')
  t.equal(costs.get('Builtins_LoadIC'), 300)
  t.equal(costs.get('0x0000000000002008'), 40)
})

t.test('an address is named by the last code object of the perf map that covers it', async (t) => {
  const map = parsePerfMap('1000 100 JS:*handle /app/dist/gateway/pipeline.js:63:33\n2000 10 JS:~old /app/x.js:1:1\n2000 20 JS:*reused /app/y.js:2:2\nnot a line\n')
  const resolve = resolver(map)
  t.equal(resolve(0x1010), 'JS:*handle /app/dist/gateway/pipeline.js:63:33')
  t.equal(resolve(0x2008), 'JS:*reused /app/y.js:2:2', 'the space was reused: the later entry wins')
  t.equal(resolve(0x3000), undefined)
  t.equal(resolve(0x0fff), undefined)
})

t.test('the profile names compiled code by function and file, merges its tiers and sorts by own cost', async (t) => {
  const entries = profile(dump, '1000 100 JS:*handle /app/dist/gateway/pipeline.js:63:33\n2000 20 LazyCompile:~handle /app/dist/gateway/pipeline.js:63:33\n')
  t.same(entries, [
    { name: 'handle pipeline.js:63:33', self: 700 },
    { name: 'Builtins_LoadIC', self: 300 },
  ])
})

t.test('with callers in the names (--separate-callers), each part is named and recursion levels are kept', async (t) => {
  const withCallers = ['events: Ir', "fn=(1) Builtins_LoadIC'0x0000000000001010'2", '0 70'].join('\n')
  t.same(profile(withCallers, '1000 100 JS:*handle /app/pipeline.js:1:1\n'), [{ name: 'Builtins_LoadIC ← handle pipeline.js:1:1 ← 2', self: 70 }])
  t.match(profile(['fn=(1) 0x00000000000000aa', '0 5'].join('\n'), '')[0]?.name, /not in the perf map/)
})

import t from 'tap'
import { attribute, cpuProfile, cpuProfileReport, parseSamples } from '../../bench/cpu-profile-report.ts'

const OWN = /\/app\/dist\//

// Four samples as `perf script -F ip,sym,dso` prints them (leaf first).
const script = [
  '\tffffffff8100 tcp_sendmsg+0x10 ([kernel.kallsyms])',
  '\t7f0000001000 JS:*handle file:///app/dist/gateway/pipeline.js:63:33+0x5 (/tmp/perf-1.map)',
  '',
  '\t14cd000 Builtins_StringAdd_CheckNone+0x20 (/usr/bin/node)',
  '\t7f0000002000 [unknown] (/tmp/perf-1.map)',
  '\t7f0000001000 JS:*handle file:///app/dist/gateway/pipeline.js:63:33+0x9 (/tmp/perf-1.map)',
  '',
  '\tc00000 v8::internal::Scavenger::ScavengePage+0x1 (/usr/bin/node)',
  '',
  '\t7f0000003000 JS:*processHeader /app/node_modules/undici/lib/core/request.js:385:24+0x1 (/tmp/perf-1.map)',
  '\t7f0000004000 JS:*parserOnIncoming node:_http_server:1026:26+0x2 (/tmp/perf-1.map)',
  '',
  '\t9dd94f uv__read+0x3 (/usr/bin/node)',
  '',
].join('\n')

t.test('samples are read leaf first; compiled JavaScript is named again from the latest map entry', async (t) => {
  const names: Record<number, string> = { 0x7f0000002000: 'JS:*logLine file:///app/dist/core/logger.js:199:20' }
  const samples = parseSamples(script, (address) => names[address])
  t.equal(samples.length, 5)
  t.same(samples[0]!.frames, ['[k] tcp_sendmsg', 'JS:*handle file:///app/dist/gateway/pipeline.js:63:33'], 'kernel frames are marked')
  t.same(samples[1]!.frames.slice(0, 2), ['Builtins_StringAdd_CheckNone', 'JS:*logLine file:///app/dist/core/logger.js:199:20'], 'an address perf could not name is named from the map')
})

t.test('a sample is charged to the kernel, the collector, or the nearest JavaScript function by whose file it is', async (t) => {
  const samples = parseSamples(script, () => undefined)
  t.same(attribute(samples[0]!, OWN), { category: 'kernel' })
  t.same(attribute(samples[1]!, OWN), { category: 'the proxy\'s own code', fn: 'handle pipeline.js:63:33' }, 'a builtin counts for the function that called it')
  t.same(attribute(samples[2]!, OWN), { category: 'garbage collection' })
  t.same(attribute(samples[3]!, OWN), { category: 'undici', fn: 'processHeader request.js:385:24' })
  t.same(attribute(samples[4]!, OWN), { category: 'Node native' }, 'no JavaScript on the stack')
  t.same(attribute({ frames: ['x', 'JS:*parserOnIncoming node:_http_server:1026:26'] }, OWN), { category: 'Node library', fn: 'parserOnIncoming node:_http_server:1026:26' })
  t.same(attribute({ frames: ['JS:*get /app/node_modules/lru-cache/dist/esm/index.min.js:1:16506'] }, OWN), { category: 'other packages', fn: 'get index.min.js:1:16506' })
  t.same(attribute({ frames: ["JS:'admit file:///app/dist/gateway/admission.js:10:14"] }, OWN), { category: 'the proxy\'s own code', fn: 'admit admission.js:10:14' }, 'the tier mark of Node 24\'s maps is dropped too')
})

t.test('the measured CPU time per request is spread over the samples, and the report puts both proxies side by side', async (t) => {
  const samples = parseSamples(script, () => undefined)
  const keygate = cpuProfile(samples, { userUs: 30, systemUs: 10 }, OWN)
  t.equal(keygate.categories.get('kernel'), 8, '40 µs over 5 samples: 8 µs each')
  t.equal(keygate.categories.get('the proxy\'s own code'), 8)
  t.equal(keygate.functions.get('handle pipeline.js:63:33 (the proxy\'s own code)'), 8)
  const floor = cpuProfile(samples.slice(2), { userUs: 15, systemUs: 9 }, OWN)
  const withHeaders = cpuProfile(samples.slice(1), { userUs: 20, systemUs: 8 }, OWN)
  const lines = cpuProfileReport([{ label: 'bare', profile: floor }, { label: 'bare + headers', profile: withHeaders }, { label: 'Keygate', profile: keygate }], 3)
  t.equal(lines[0], '| µs / request | bare | bare + headers | Keygate | Keygate − bare | Keygate − bare + headers |')
  t.ok(lines.includes('| CPU time (user + system) | 24.00 | 28.00 | 40.00 | +16.00 | +12.00 |'))
  t.ok(lines.includes('| the proxy\'s own code | 0.00 | 7.00 | 8.00 | +8.00 | +1.00 |'), '28 µs over 4 samples: 7 µs each')
  t.ok(lines.includes('| kernel | 0.00 | 0.00 | 8.00 | +8.00 | +8.00 |'))
  t.ok(lines.includes('| undici | 8.00 | 7.00 | 8.00 | +0.00 | +1.00 |'))
  const first = lines.findIndex((l) => l.startsWith('| function'))
  t.equal(lines[first], '| function | bare + headers µs / request | Keygate µs / request | Δ |', 'functions are compared with the nearest floor')
  t.equal(lines[first + 2], '| `handle pipeline.js:63:33 (the proxy\'s own code)` | 7.00 | 8.00 | +1.00 |')
  t.equal(lines.length, first + 2 + 2, 'as many functions as there are (fewer than asked)')
})

import t from 'tap'
import { causeLabel, upstreamCause } from '../../../gateway/upstream-failure.ts'

const err = (code: string, extra: Record<string, string> = {}) => Object.assign(new Error(code), { code }, extra)

t.test('a failed exchange is told by its cause: system code, timeout or TLS', async (t) => {
  t.same(upstreamCause(err('ECONNREFUSED'), false), { cause: 'ECONNREFUSED', detail: undefined })
  t.same(upstreamCause(err('ECONNRESET'), false), { cause: 'ECONNRESET', detail: undefined })
  t.same(upstreamCause(err('UND_ERR_CONNECT_TIMEOUT'), false), { cause: 'timeout', detail: 'UND_ERR_CONNECT_TIMEOUT' })
  t.same(upstreamCause(undefined, true), { cause: 'timeout', detail: undefined })
  t.same(upstreamCause(err('SELF_SIGNED_CERT_IN_CHAIN'), false), { cause: 'TLS', detail: 'SELF_SIGNED_CERT_IN_CHAIN' })
  t.same(upstreamCause(err('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), false), { cause: 'TLS', detail: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' })
  t.same(upstreamCause(err('ERR_TLS_CERT_ALTNAME_INVALID'), false), { cause: 'TLS', detail: 'ERR_TLS_CERT_ALTNAME_INVALID' })
  t.same(upstreamCause(err('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', { library: 'SSL routines' }), false).cause, 'TLS')
  t.same(upstreamCause(new Error('odd'), false), { cause: 'other', detail: undefined })
})

t.test('metric labels are bounded: an unknown cause is "other"', async (t) => {
  t.equal(causeLabel('ECONNREFUSED'), 'ECONNREFUSED')
  t.equal(causeLabel('TLS'), 'TLS')
  t.equal(causeLabel('EWHATEVER'), 'other')
  t.equal(causeLabel(undefined), 'other')
})

import t from 'tap'
import { measureUpload } from '../../bench/upload-memory.ts'
import { ensureBuilt } from '../helpers/compiled.ts'

// The smaller run of `npm run bench:upload` (1 GiB there): memory must not follow the body size.
t.test('a 128 MiB upload streams through a gateway process intact, and its RSS grows by less than 50 MB', async (t) => {
  const bytes = 128 * 1024 * 1024
  ensureBuilt()
  const r = await measureUpload(bytes, 'compiled')
  t.equal(r.status, 200, 'the upstream answered')
  t.equal(r.upstreamBytes, bytes, 'every byte reached the upstream')
  t.equal(r.upstreamSha256, r.clientSha256, 'the upstream saw the same SHA-256 as the client sent')
  t.ok(r.growthBytes < 50 * 1024 * 1024, `RSS grew by ${(r.growthBytes / 1024 / 1024).toFixed(1)} MiB (baseline ${(r.baselineRssBytes / 1024 / 1024).toFixed(0)} MiB)`)
})

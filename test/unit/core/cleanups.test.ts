import t from 'tap'
import { closeAll, type Cleanups } from '../../../core/cleanups.ts'

t.test('everything opened is closed, newest first, even when one close fails', async (t) => {
  const closed: string[] = []
  const cleanups: Cleanups = []
  for (const name of ['database', 'redis', 'server']) cleanups.unshift(async () => { closed.push(name); if (name === 'redis') throw new Error('already gone') })
  await closeAll(cleanups)
  t.same(closed, ['server', 'redis', 'database'])
})

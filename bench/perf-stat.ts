import { spawn } from 'node:child_process'

/**
 * Kernel counts of a running process, from `perf stat` (Debian's linux-perf, `ensureBinary('perf', 'linux-perf')`) attached to it: system calls entered,
 * context switches, page faults. They are software events, counted on machines whose virtual CPUs have no hardware
 * counters, and they do not move with the machine's load the way CPU time does.
 */
export const KERNEL_EVENTS = ['raw_syscalls:sys_enter', 'context-switches', 'page-faults'] as const
export type KernelCounts = Record<(typeof KERNEL_EVENTS)[number], number>

/** Starts counting `pid`'s events (every thread it has) with the perf binary at `perf`; `stop()` ends the count and reads it. */
export function perfStat(perf: string, pid: number): { stop(): Promise<KernelCounts> } {
  const child = spawn(perf, ['stat', '-x', ',', '-e', KERNEL_EVENTS.join(','), '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d })
  const exited = new Promise<void>((r) => child.once('exit', () => r()))
  return {
    async stop() {
      child.kill('SIGINT')
      await exited
      // CSV lines: value,unit,event,…; "<not supported>" or "<not counted>" where the kernel would not count it.
      const counts = {} as KernelCounts
      for (const event of KERNEL_EVENTS) {
        const line = err.split('\n').find((l) => l.split(',')[2] === event)
        const value = Number(line?.split(',')[0])
        if (!line || !Number.isFinite(value)) throw new Error(`perf stat did not count ${event}:\n${err}`)
        counts[event] = value
      }
      return counts
    },
  }
}

/** Each count divided by the `requests` it was counted over. */
export function perRequest(counts: KernelCounts, requests: number): KernelCounts {
  const per = Math.max(1, requests)
  return Object.fromEntries(KERNEL_EVENTS.map((e) => [e, counts[e] / per])) as KernelCounts
}

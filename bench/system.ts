import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'

/** Small helpers the benchmarks share: Debian packages, free ports, memory of a process tree. */

/**
 * The path of `binary` (searched in PATH and the sbin directories), installing `pkg` from Debian's packages
 * when it is missing and this process may. Undefined, with the reason in `why`, when it cannot be had.
 */
export function ensureBinary(binary: string, pkg: string): { path?: string; why?: string } {
  const find = () => {
    const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', '/sbin', '/bin']
    return dirs.map((d) => `${d}/${binary}`).find((p) => existsSync(p))
  }
  const found = find()
  if (found) return { path: found }
  if (process.getuid?.() !== 0) return { why: `${binary} is not installed and installing it needs root (apt-get install -y ${pkg})` }
  process.stderr.write(`bench: installing ${pkg} from Debian's packages…\n`)
  const install = () => spawnSync('apt-get', ['install', '-y', '--no-install-recommends', pkg], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).status === 0
  if (!install()) {
    spawnSync('apt-get', ['update'], { stdio: 'ignore' })
    install()
  }
  const installed = find()
  return installed ? { path: installed } : { why: `${binary} could not be installed (apt-get install -y ${pkg} failed)` }
}

/** A loopback port free at the time of asking, below the ephemeral range (see `scripts/ports.ts`). */
export { freePort } from '../scripts/ports.ts'

function processTree(pid: number): number[] {
  const parent = new Map<number, number>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      // The command name may hold spaces and parentheses: the fields start after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      parent.set(Number(entry), Number(fields[1]))
    } catch {
      // The process ended while we looked.
    }
  }
  const inTree = (p: number): boolean => p === pid || (parent.has(p) && p !== 1 && p !== 0 && inTree(parent.get(p)!))
  return [...parent.keys()].filter(inTree)
}

/** Resident memory (bytes) of `pid` and every process below it (a cluster primary and its workers, nginx's master and worker). */
export function treeRss(pid: number): number {
  let total = 0
  for (const p of processTree(pid)) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))
      if (m) total += Number(m[1]) * 1024
    } catch {
      // Gone meanwhile.
    }
  }
  return total
}

/**
 * Resolves once `check` answers true (a throw counts as not yet); rejects after `timeoutMs`, or at once when
 * `gaveUp` names a reason (the process being waited for exited).
 */
export async function waitFor(what: string, check: () => boolean | Promise<boolean>, gaveUp: () => string | undefined = () => undefined, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await Promise.resolve().then(check).catch(() => false))) {
    const reason = gaveUp()
    if (reason) throw new Error(`${what}: ${reason}`)
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs / 1000} s`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/**
 * CPU time (ms, user + system) that `pid` and the processes below it have used so far. On a machine whose
 * cores are shared, CPU time per request is the steadier measure of a proxy's own cost than req/s.
 */
export function treeCpuMs(pid: number): number {
  const { user, system } = treeCpuSplitMs(pid)
  return user + system
}

/** CPU time (ms) of a process and its descendants, user and system apart. */
export function treeCpuSplitMs(pid: number): { user: number; system: number } {
  let user = 0
  let system = 0
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      // utime and stime are fields 14 and 15 of stat(5); here, counted from field 3, at 11 and 12.
      user += Number(fields[11])
      system += Number(fields[12])
    } catch {
      // Gone meanwhile.
    }
  }
  return { user: user * 10, system: system * 10 } // USER_HZ is 100 on Linux
}

/**
 * CPU time (ms, user + system) of this process's children that have ended and been waited for (`cutime` and
 * `cstime` of /proc/self/stat): a wrk run's own CPU once it exited, read before and after it.
 */
export function endedChildrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // cutime and cstime are fields 16 and 17 of stat(5); here, counted from field 3, at 13 and 14.
  return (Number(fields[13]) + Number(fields[14])) * 10
}

/**
 * Prints a bench's report and writes it to `BENCH_RESULTS_FILE`, else `bench/results/<name>-<date><kind>.md`, or,
 * when a run of the day is there already (a README may cite it), `…-b.md`, `…-c.md`, …; says where on stderr.
 */
export function writeResults(name: string, text: string, kind = ''): string {
  process.stdout.write(text)
  mkdirSync('bench/results', { recursive: true })
  const file = process.env.BENCH_RESULTS_FILE ?? resultsFile(`bench/results/${name}-${new Date().toISOString().slice(0, 10)}${kind}`)
  writeFileSync(file, text)
  process.stderr.write(`bench: written to ${file}\n`)
  return file
}

/** `<base>.md`, or the first of `<base>-b.md`, `<base>-c.md`, … that does not exist yet. */
export function resultsFile(base: string, exists: (file: string) => boolean = existsSync): string {
  if (!exists(`${base}.md`)) return `${base}.md`
  for (let c = 98; c <= 122; c++) {
    const file = `${base}-${String.fromCharCode(c)}.md`
    if (!exists(file)) return file
  }
  throw new Error(`${base}.md and every ${base}-b.md to -z.md exist already: set BENCH_RESULTS_FILE`)
}

/**
 * node's arguments for a process whose compiled JavaScript a profile must name: V8 writes its symbol map to
 * `/tmp/perf-<pid>.map` (`dropPerfMap` disposes of it), and its own log, which the flag also turns on, into `dir`
 * (by default `isolate-*-v8.log` in the working directory).
 */
export function perfMapNodeArgs(dir: string): string[] {
  return ['--perf-basic-prof', '--no-logfile-per-isolate', `--logfile=${dir}/v8.log`]
}

/** Where `node --perf-basic-prof` writes a process's symbol map; kept in `dir` with BENCH_KEEP, then removed. */
export function dropPerfMap(pid: number, dir: string): void {
  const map = `/tmp/perf-${pid}.map`
  if (process.env.BENCH_KEEP && existsSync(map)) writeFileSync(`${dir}/perf-${pid}.map`, readFileSync(map))
  rmSync(map, { force: true })
}

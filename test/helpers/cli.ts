import { spawn } from 'node:child_process'
import { ROOT } from '../../scripts/entry-points.ts'
import { compiledArgs } from './compiled.ts'

/** Runs the CLI as an operator would (compiled, in its own process: test/helpers/compiled.ts), with `stdin` piped in. */
export function cli(args: string[], env: Record<string, string>, stdin = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...compiledArgs('cli'), ...args], { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'silent', KEYGATE_PASSWORD_HASH_LOG_N: '14', ...env } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => { stdout += d })
    child.stderr.on('data', (d) => { stderr += d })
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }))
    child.stdin.end(stdin)
  })
}

import { readSecret } from './read-secret.ts'
import { runCli } from './run.ts'

/** `npm run keygate --`: the operator's CLI on the process's own stdin, stdout, stderr and environment. */
const status = await runCli(process.argv.slice(2), {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  say: (line) => void process.stderr.write(`keygate: ${line}\n`),
  readSecret,
})
process.exitCode = status

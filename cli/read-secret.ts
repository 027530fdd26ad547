import { createInterface } from 'node:readline'

/**
 * Reads a secret: from a prompt with echo off when stdin is a terminal (asking twice when `confirm` is
 * given), else the first line of stdin (`printf '%s' "$PASSWORD" | npm run keygate -- …`).
 */
export async function readSecret(prompt: string, options: { confirm?: string } = {}): Promise<string> {
  if (!process.stdin.isTTY) {
    let data = ''
    for await (const chunk of process.stdin) data += String(chunk)
    return data.split(/\r?\n/)[0] ?? ''
  }
  const ask = (question: string) => new Promise<string>((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true })
    const rlOut = rl as unknown as { _writeToOutput: (s: string) => void }
    rlOut._writeToOutput = (s: string) => { if (s.includes(question)) process.stderr.write(question) }
    rl.question(question, (answer) => {
      rl.close()
      process.stderr.write('\n')
      resolve(answer)
    })
  })
  const first = await ask(prompt)
  if (options.confirm && (await ask(options.confirm)) !== first) throw new Error('the two entries differ')
  return first
}

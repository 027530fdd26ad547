/**
 * What the stack rows' gateways (bench/stack-express.ts, bench/stack-fastify.ts) are told by `npm run bench`,
 * from their environment: the upstream, Keygate's database schema (API keys), the access tokens' secret, issuer
 * and audience as Keygate signs them (core/tokens.ts), and the access log file. In the environment rather than
 * the arguments so that the secret is not in the process list.
 */
export interface StackSettings { upstream: string; databaseUrl: string; schema: string; jwtSecret: string; issuer: string; audience: string; log: string }

export function stackSettings(env: NodeJS.ProcessEnv): StackSettings {
  const need = (name: string) => {
    const v = env[name]
    if (!v) throw new Error(`${name} is not set`)
    return v
  }
  const issuer = env.STACK_ISSUER ?? 'keygate'
  const schema = need('STACK_SCHEMA')
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new RangeError(`invalid schema name ${schema}`)
  return { upstream: need('STACK_UPSTREAM'), databaseUrl: need('STACK_DATABASE_URL'), schema, jwtSecret: need('STACK_JWT_SECRET'), issuer, audience: `${issuer}:access`, log: need('STACK_LOG') }
}

/** The environment that gives a stack gateway these settings. */
export function stackEnv(s: Omit<StackSettings, 'audience'>): Record<string, string> {
  return { STACK_UPSTREAM: s.upstream, STACK_DATABASE_URL: s.databaseUrl, STACK_SCHEMA: s.schema, STACK_JWT_SECRET: s.jwtSecret, STACK_ISSUER: s.issuer, STACK_LOG: s.log }
}

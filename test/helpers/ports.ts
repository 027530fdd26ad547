/** The tests' loopback ports: chosen as the benchmarks choose theirs (`scripts/ports.ts`). */
export { freePort } from '../../scripts/ports.ts'

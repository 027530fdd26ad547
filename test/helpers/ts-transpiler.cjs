// @ts-check
'use strict'
/**
 * The transpiler tap's TypeScript loader (ts-node, transpile-only) uses for the test processes: esbuild, the
 * compiler tsx runs `npm run dev` with, instead of TypeScript's own, which costs each test process seconds of
 * CPU for the gateway's sources. Types are checked by `npm run typecheck`, never here. Named in tsconfig.json
 * ("ts-node": "transpiler"); ts-node calls `create` once per module kind and `transpile` once per file.
 */
const { transformSync } = require('esbuild')

/** @param {{ nodeModuleEmitKind?: 'nodeesm' | 'nodecjs' }} options */
exports.create = ({ nodeModuleEmitKind }) => ({
  /** @param {string} input @param {{ fileName: string }} options */
  transpile(input, { fileName }) {
    const out = transformSync(input, {
      loader: fileName.endsWith('x') ? 'tsx' : 'ts',
      format: nodeModuleEmitKind === 'nodecjs' || fileName.endsWith('.cts') ? 'cjs' : 'esm',
      target: 'es2022',
      sourcefile: fileName,
      sourcemap: 'external',
      // What tsconfig.json's target ES2022 implies for TypeScript: class fields are defined, not assigned.
      tsconfigRaw: { compilerOptions: { useDefineForClassFields: true } },
    })
    return { outputText: out.code, sourceMapText: out.map }
  },
})

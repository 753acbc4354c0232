// Bundles src/ into dist/index.js (the main step) and dist/post.js (the post
// step), ESM, the way actions/typescript-action does.
import commonjs from '@rollup/plugin-commonjs'
import json from '@rollup/plugin-json'
import nodeResolve from '@rollup/plugin-node-resolve'
import typescript from '@rollup/plugin-typescript'
import { copyFileSync, mkdirSync } from 'node:fs'

/** Fresh plugin instances per bundle. */
function plugins() {
  return [
    typescript({
      tsconfig: './tsconfig.build.json',
      outDir: 'dist',
      module: 'esnext',
      moduleResolution: 'bundler'
    }),
    nodeResolve({ preferBuiltins: true, exportConditions: ['node', 'import', 'default'] }),
    commonjs({
      ignoreDynamicRequires: true,
      // Optional native add-ons: ssh2 falls back to pure JS when they are absent.
      ignore: (id) => id === 'cpu-features' || id.endsWith('.node')
    }),
    json(),
    {
      // The host-side script is a readable file in src/, shipped beside the bundle.
      name: 'copy-host-script',
      writeBundle() {
        mkdirSync('dist', { recursive: true })
        copyFileSync('src/host/rotate-host.sh', 'dist/rotate-host.sh')
        copyFileSync('src/host/rotate-host-swarm.sh', 'dist/rotate-host-swarm.sh')
      }
    }
  ]
}

/** @type {import("rollup").RollupOptions} */
const main = {
  input: 'src/index.ts',
  output: {
    esModule: true,
    file: 'dist/index.js',
    format: 'es',
    sourcemap: true,
    inlineDynamicImports: true,
    // ssh2 is CommonJS: it loads optional native helpers with require() inside
    // try/catch and uses __dirname.
    banner: [
      "import { createRequire as __createRequire } from 'node:module'",
      "import { fileURLToPath as __fileURLToPath } from 'node:url'",
      "import { dirname as __pathDirname } from 'node:path'",
      'const require = __createRequire(import.meta.url)',
      'const __filename = __fileURLToPath(import.meta.url)',
      'const __dirname = __pathDirname(__filename)'
    ].join(';\n')
  },
  onwarn(warning, warn) {
    if (warning.code === 'CIRCULAR_DEPENDENCY' || warning.code === 'THIS_IS_UNDEFINED') return
    warn(warning)
  },
  plugins: plugins()
}

/** The post step: the same plugins, its own single-file bundle. */
const post = {
  ...main,
  input: 'src/post-index.ts',
  output: { ...main.output, file: 'dist/post.js' },
  // dist/rotate-host.sh, beside both bundles, comes from the main bundle.
  plugins: plugins().filter((p) => p.name !== 'copy-host-script')
}

export default [main, post]

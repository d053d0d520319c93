// Builds the addon and writes the generated files next to it:
//   natsbridge.linux-x64-gnu.node   the addon (not committed)
//   native.js, native.d.ts          napi-rs's loader and type definitions (committed)
// It runs cargo itself rather than `napi build`, which always passes `--target` and so makes
// cargo rebuild every dependency in a second target directory; the loader and .d.ts come from
// @napi-rs/cli's own generators. `--check` fails when the committed generated files differ
// from freshly generated ones (they drifted from the Rust source). `--release` builds release.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { generateTypeDef, writeJsBinding } from '@napi-rs/cli'

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), '..')
const repo = join(pkgDir, '..')
const check = process.argv.includes('--check')
const release = process.argv.includes('--release')
const profile = release ? 'release' : 'debug'
const targetDir = process.env.CARGO_TARGET_DIR ?? join(repo, 'target')
const typeDefDir = join(targetDir, 'napi-type-def', profile)
mkdirSync(typeDefDir, { recursive: true })

const cargoArgs = ['build', '-p', 'natsbridge-node', ...(release ? ['--release'] : [])]
execFileSync('cargo', cargoArgs, {
  cwd: repo,
  stdio: 'inherit',
  // napi-derive writes the type definitions while the crate compiles (and cargo recompiles
  // it whenever the source changes); when the file is missing, force that one recompile.
  env: {
    ...process.env,
    NAPI_TYPE_DEF_TMP_FOLDER: typeDefDir,
    ...(existsSync(join(typeDefDir, 'natsbridge-node')) ? {} : { NAPI_FORCE_BUILD_NATSBRIDGE_NODE: String(Date.now()) }),
  },
})
// Without the DWARF sections (the debug build is ~240 MB with them; symbols stay for perf),
// written aside and renamed over: a process that has the old addon loaded keeps its file.
const addon = join(pkgDir, 'natsbridge.linux-x64-gnu.node')
execFileSync('strip', ['--strip-debug', '-o', `${addon}.tmp`, join(targetDir, profile, 'libnatsbridge_node.so')])
renameSync(`${addon}.tmp`, addon)

const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'))
const { exports, dts } = await generateTypeDef({ typeDefDir, cwd: pkgDir, declareBindingTarget: true })
const outDir = check ? join(targetDir, 'napi-check') : pkgDir
mkdirSync(outDir, { recursive: true })
writeFileSync(join(outDir, 'native.d.ts'), dts)
await writeJsBinding({
  platform: true,
  idents: exports,
  jsBinding: 'native.js',
  binaryName: pkg.napi.binaryName,
  packageName: pkg.napi.packageName ?? pkg.name,
  version: pkg.version,
  outputDir: outDir,
})
if (check) {
  const drifted = ['native.js', 'native.d.ts'].filter(
    (f) => readFileSync(join(outDir, f), 'utf8') !== readFileSync(join(pkgDir, f), 'utf8'),
  )
  if (drifted.length) {
    console.error(`generated files drifted: ${drifted.join(', ')}; run node scripts/build.mjs and commit them`)
    process.exit(1)
  }
  console.error('generated files native.js, native.d.ts are up to date')
}

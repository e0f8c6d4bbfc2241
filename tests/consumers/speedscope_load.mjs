#!/usr/bin/env node
// speedscope_load.mjs FILE... - load each file with speedscope's own importer
// (the npm package, as its web app runs it) and print what it found as one
// JSON document on stdout:
//
//   {"speedscope": version, "files": [{"file", "importer", "name",
//     "indexToView", "warnings": [...], "profiles": [{"name", "unit",
//     "total", "frames", "samples", "stacks": {"f (a.py:1);g": weight}}]}]}
//
// The package ships only a browser bundle: one script that defines the
// importers inside a closure and then renders the app.  We run that script
// in this process with the few browser globals its top level reads, and
// stop it right after the importer module is defined, handing the module
// out.  The cut is found by what the code does (the promise every import
// path awaits), not by minified names; if a release moves it, this says so
// and exits 2.
import fs from 'node:fs'
import path from 'node:path'
import vm from 'node:vm'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const pkg = path.join(here, 'node_modules', 'speedscope')

function fail(msg) {
  process.stdout.write(JSON.stringify({ error: msg }) + '\n')
  process.exit(2)
}

function loadImporter() {
  const dist = path.join(pkg, 'dist', 'release')
  const bundles = fs.readdirSync(dist).filter(f => /^speedscope-\w+\.js$/.test(f))
  if (bundles.length !== 1) fail(`expected one speedscope-*.js in ${dist}, found ${bundles}`)
  let src = fs.readFileSync(path.join(dist, bundles[0]), 'utf8')
  // The app reaches the importers only through `(await M).importXxx(...)`,
  // M being `var M=Promise.resolve().then(()=>(init(),module));`.
  const use = /\(await (\w+)\)\.importProfilesFromArrayBuffer\(/.exec(src)
  if (!use) fail('no importProfilesFromArrayBuffer call in the bundle')
  const decl = new RegExp(
    `var ${use[1]}=Promise\\.resolve\\(\\)\\.then\\(\\(\\)=>\\(\\w+\\(\\),\\w+\\)\\);`).exec(src)
  if (!decl) fail(`no definition of the importer promise ${use[1]} in the bundle`)
  const cut = decl.index + decl[0].length
  src = src.slice(0, cut) + `globalThis.__speedscopeImporter=${use[1]};return;` + src.slice(cut)
  // What the code before the cut reads at load time: the URL's hash
  // parameters, the colour scheme setting.
  Object.assign(globalThis, {
    window: globalThis,
    location: { hash: '', protocol: 'file:', href: 'file:///speedscope/index.html' },
    localStorage: {},
    matchMedia: () => ({ matches: false }),
  })
  vm.runInThisContext(src, { filename: bundles[0] })
  if (!globalThis.__speedscopeImporter) fail('the bundle did not reach the importer')
  return globalThis.__speedscopeImporter
}

function frameText(f) {
  if (!f.file) return f.name
  return `${f.name} (${f.file}${f.line ? ':' + f.line : ''})`
}

// Self weight of every distinct path in the merged call tree: the weight
// speedscope gives each stack, root first.
function stacksOf(profile) {
  const out = {}
  const walk = (node, prefix) => {
    for (const child of node.children) {
      const key = prefix === null ? frameText(child.frame) : prefix + ';' + frameText(child.frame)
      const w = child.getSelfWeight()
      if (w) out[key] = (out[key] || 0) + w
      walk(child, key)
    }
  }
  walk(profile.getGroupedCalltreeRoot(), null)
  return out
}

async function main() {
  const files = process.argv.slice(2)
  if (!files.length) fail('usage: speedscope_load.mjs FILE...')
  const version = JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'), 'utf8')).version
  let logs = [], warnings = []
  const log = console.log, warn = console.warn
  console.log = (...a) => logs.push(a.join(' '))
  console.warn = (...a) => warnings.push(a.join(' '))
  const out = { speedscope: version, files: [] }
  try {
    const importer = await loadImporter()
    for (const file of files) {
      logs = []
      warnings = []
      const bytes = fs.readFileSync(file)
      const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)
      const group = await importer.importProfilesFromArrayBuffer(path.basename(file), ab)
      const entry = { file, importer: logs.find(l => l.startsWith('Importing as')) || null,
                      warnings }
      if (group) {
        entry.name = group.name
        entry.indexToView = group.indexToView
        entry.profiles = group.profiles.map(p => {
          let frames = 0
          p.forEachFrame(() => frames++)
          return { name: p.getName(), unit: p.getWeightUnit(), total: p.getTotalWeight(),
                   frames, samples: p.samples.length, stacks: stacksOf(p) }
        })
      }
      out.files.push(entry)
    }
  } finally {
    console.log = log
    console.warn = warn
  }
  process.stdout.write(JSON.stringify(out) + '\n')
}

main().catch(e => fail(String(e && e.stack || e).slice(0, 2000)))

// Filtering a 1 MiB Label Studio task list: the gateway's parse + field filter + drop list +
// serialise, against plain JSON.parse + JSON.stringify of the same body. Prints medians.
//
//   npm run bench
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { compileFields, dropKeys, filterResponse } from '../dist/src/policy/fields.js'
import { DEFAULT_DROP_FIELDS } from '../dist/src/config/schema.js'

const examples = fileURLToPath(new URL('../../shared/labelstudio/examples/', import.meta.url))
const seed = JSON.parse(readFileSync(examples + 'export_json_with_reviews_and_users.json', 'utf8'))
const tasks = []
let size = 0
for (let i = 0; size < 1024 * 1024; i++) {
  const task = structuredClone(seed[i % seed.length])
  task.id = i + 1
  tasks.push(task)
  size = Buffer.byteLength(JSON.stringify({ tasks, total: tasks.length, total_annotations: tasks.length, total_predictions: 0 }))
}
const body = JSON.stringify({ tasks, total: tasks.length, total_annotations: tasks.length, total_predictions: 0 })
const allowed = compileFields(['id', 'data', 'annotations[].id', 'annotations[].result', 'annotations[].lead_time', 'created_at'])
const drops = new Set(DEFAULT_DROP_FIELDS)

function median (run, rounds = 60) {
  for (let i = 0; i < 10; i++) run()
  const times = []
  for (let i = 0; i < rounds; i++) {
    const start = process.hrtime.bigint()
    run()
    times.push(Number(process.hrtime.bigint() - start) / 1e6)
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]
}

const plain = median(() => JSON.stringify(JSON.parse(body)))
let out = ''
const filtered = median(() => {
  const kept = filterResponse(JSON.parse(body), allowed)
  dropKeys(kept, drops)
  out = JSON.stringify(kept)
})
console.log(`body: ${(Buffer.byteLength(body) / 1024).toFixed(0)} KiB, ${tasks.length} tasks; filtered: ${(Buffer.byteLength(out) / 1024).toFixed(0)} KiB`)
console.log(`JSON.parse + JSON.stringify:          median ${plain.toFixed(2)} ms`)
console.log(`parse + filter + drop list + stringify: median ${filtered.toFixed(2)} ms (${(filtered / plain).toFixed(2)}x)`)
console.log(`node ${process.version}, ${process.arch}`)

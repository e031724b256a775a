import { LineCounter, parseDocument, isMap, isSeq, isPair, isScalar, type Document, type Node } from 'yaml'

// Positions for YAML documents, shared by the configuration and the policy loaders: every problem
// is reported as file:line:col with the path of the option, so that all of them can be fixed at once.

export interface Problem {
  file: string
  line: number
  col: number
  path: string
  message: string
}

export type PathSegment = string | number

export interface YamlSource {
  file: string
  doc: Document.Parsed
  lineCounter: LineCounter
}

/** Parses YAML strictly: syntax errors, duplicate keys and unknown tags are all problems. */
export function parseYamlSource (file: string, text: string): { source: YamlSource, problems: Problem[] } {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: true, strict: true })
  const problems: Problem[] = []
  // After the first syntax error the parser's further complaints are mostly echoes of it.
  const syntax = doc.errors.filter((e) => e.code !== 'DUPLICATE_KEY').slice(0, 1)
  const duplicates = doc.errors.filter((e) => e.code === 'DUPLICATE_KEY')
  for (const issue of [...syntax, ...duplicates, ...doc.warnings]) {
    const pos = issue.linePos?.[0] ?? { line: 1, col: 1 }
    let message = (issue.message.split('\n')[0] ?? issue.message).replace(/ at line \d+, column \d+:?$/, '')
    if (issue.code === 'DUPLICATE_KEY') message = `duplicate key ${keyAt(text, issue.pos[0])}`
    else if (/flow/i.test(message)) {
      message += ' (inside [ ] lists, quote a value holding { } or [ ], such as "/api/tasks/{id}" or "a[].b",' +
        ' or write one "- " item per line)'
    }
    problems.push({ file, line: pos.line, col: pos.col, path: '', message })
  }
  return { source: { file, doc, lineCounter }, problems }
}

function keyAt (text: string, offset: number): string {
  const key = /^[^:\n]*/.exec(text.slice(offset))?.[0]?.trim() ?? ''
  return `"${key}"`
}

/** The node at a path, or the deepest existing ancestor. `key` points at a map key instead of its value. */
function findNode (doc: Document.Parsed, path: readonly PathSegment[], key: boolean): Node | null {
  let node: unknown = doc.contents
  let found: Node | null = doc.contents
  for (let i = 0; i < path.length; i++) {
    const segment = path[i]
    const last = i === path.length - 1
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment))
      if (!isPair(pair)) return found
      if (last && key) return pair.key as Node
      node = pair.value
    } else if (isSeq(node) && typeof segment === 'number') {
      node = node.items[segment]
    } else {
      return found
    }
    if (node && typeof node === 'object' && 'range' in node) found = node as Node
  }
  return found
}

export function locate (source: YamlSource, path: readonly PathSegment[], key = false): { line: number, col: number } {
  const node = findNode(source.doc, path, key)
  const offset = node?.range?.[0] ?? 0
  return source.lineCounter.linePos(offset)
}

export function pointer (path: readonly PathSegment[]): string {
  return '/' + path.map((s) => String(s).replaceAll('~', '~0').replaceAll('/', '~1')).join('/')
}

export function problemAt (source: YamlSource, path: readonly PathSegment[], message: string, key = false): Problem {
  return { file: source.file, ...locate(source, path, key), path: pointer(path), message }
}

export function formatProblem (p: Problem): string {
  const where = p.path === '' || p.path === '/' ? '' : ` ${p.path}`
  return `${p.file}:${p.line}:${p.col}${where}: ${p.message}`
}

export function formatProblems (problems: readonly Problem[]): string {
  return problems.map(formatProblem).join('\n')
}

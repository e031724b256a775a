import { connect as tlsConnect } from 'node:tls'
import { connect as netConnect } from 'node:net'
import { readFileSync } from 'node:fs'

// Raw HTTP/1.1 over a socket: ordinary clients normalise paths and headers before sending, so
// the request shapes that break gateways can only be sent this way.

export interface RawResponse { status: number, headers: Record<string, string>, body: string, raw: string }

function parse (raw: string): RawResponse {
  const [head = '', ...rest] = raw.split('\r\n\r\n')
  const [statusLine = '', ...lines] = head.split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const i = line.indexOf(':')
    if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim()
  }
  return { status: Number(statusLine.split(' ')[1] ?? 0), headers, body: rest.join('\r\n\r\n'), raw }
}

export async function rawRequest (port: number, text: string, options: { ca?: string, tls?: boolean } = {}): Promise<RawResponse> {
  const socket = options.tls === false
    ? netConnect({ host: '127.0.0.1', port })
    : tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ...(options.ca ? { ca: readFileSync(options.ca) } : {}) })
  return await new Promise((resolve, reject) => {
    let data = ''
    socket.setTimeout(5000, () => socket.destroy(new Error('raw request timed out')))
    socket.on('data', (chunk: Buffer) => { data += chunk.toString('latin1') })
    socket.on('error', (err) => data === '' ? reject(err) : resolve(parse(data)))
    socket.on('close', () => resolve(parse(data)))
    socket.on(options.tls === false ? 'connect' : 'secureConnect', () => socket.write(text))
  })
}

/** A request line and headers, with Host and Connection: close added, and CRLF line ends. */
export function http (requestLine: string, headers: string[] = [], body = ''): string {
  return [requestLine, 'Host: localhost', ...headers, 'Connection: close', '', body].join('\r\n')
}

import { request } from 'undici'
import { encodeFileUri } from '../../src/media/uri.js'
import type { TestGateway } from './gateway.js'
import type { TestS3 } from './s3.js'

// What the media tests share: a client that reads answers as bytes (and can keep every answer for
// a check that nothing leaks), the paths Label Studio's links take, and an S3 backend's configuration.

export interface MediaAnswer {
  status: number
  headers: Record<string, string | string[] | undefined>
  raw: Buffer
  /** Why the body could not be read whole (the gateway cut it off); null when it was. */
  error: string | null
  text: string
  json: () => Record<string, unknown>
  code: () => string | undefined
}

export type MediaCall = (method: string, path: string, headers?: Record<string, string>) => Promise<MediaAnswer>

/** Requests to the gateway whose bodies are read as bytes; `kept`, if given, receives every answer's headers and bytes. */
export function mediaClient (gw: TestGateway, kept: string[] | null = null, timeoutMs = 10_000): MediaCall {
  return async (method, path, headers = {}) => {
    const res = await request(gw.url + path, {
      method: method as 'GET', headers, dispatcher: gw.dispatcher, headersTimeout: timeoutMs, bodyTimeout: timeoutMs
    })
    let raw = Buffer.alloc(0)
    let error: string | null = null
    try {
      raw = Buffer.from(await res.body.arrayBuffer())
    } catch (err) {
      error = (err as Error).message
    }
    kept?.push(JSON.stringify(res.headers), raw.toString('latin1'))
    const json = (): Record<string, unknown> => JSON.parse(raw.toString('utf8')) as Record<string, unknown>
    return { status: res.statusCode, headers: res.headers, raw, error, text: raw.toString('latin1'), json, code: () => json().code as string | undefined }
  }
}

/** A task's resolver link, as Label Studio writes it. */
export function resolverPath (task: number, uri: string): string {
  return `/tasks/${task}/resolve/?fileuri=${encodeFileUri(uri)}`
}

/** A local-files link, as Label Studio writes it. */
export function localFilesPath (path: string): string {
  return `/data/local-files/?d=${encodeURIComponent(path)}`
}

/** An s3 backend of the emulator, its key read from LG_S3_ID and `secretEnv`. */
export function s3BackendConfig (s3: TestS3, name: string, bucket: string, options: {
  projects: number[], endpoint?: string, secretEnv?: string
}): Record<string, unknown> {
  return {
    name,
    type: 's3',
    endpoint: options.endpoint ?? s3.endpoint,
    region: s3.region,
    buckets: [bucket],
    projects: options.projects,
    access_key_id: { env: 'LG_S3_ID' },
    secret_access_key: { env: options.secretEnv ?? 'LG_S3_SECRET' }
  }
}

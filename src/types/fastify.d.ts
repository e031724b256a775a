import type { Principal } from '../auth/authenticate.js'
import type { Decision } from '../policy/evaluate.js'
import type { Target } from '../edge/canonical.js'
import type { ListSpec } from '../policy/scope.js'

/** Everything the gateway learns about one request, filled in by its hooks in order. */
export interface GateState {
  target: Target | null
  principal: Principal | null
  decision: Decision | null
  /** The public error code the request was refused or failed with, if any. */
  code: string | null
  /** The precise reason, for the log only. */
  detail: string | null
  upstream: { start: number, statusCode: number | null, ms: number | null } | null
  /** Length of the body the gateway serialised itself, when it replaced the client's. */
  forwardedLength: number | null
  /** The project checks of a request on a rule of a role bound to projects, for the access line. */
  project: {
    checks: Array<{ via: string, kind: string, id: number, project: number | null, how: string }>
    /** Checks made but not listed. */
    more: number
    list: boolean
  } | null
  /** A list whose items are kept only for these projects. */
  projectList: { spec: ListSpec, projects: ReadonlySet<number> } | null
  /** The query sent upstream when it is not the client's (a list narrowed to the bound projects). */
  upstreamQuery: string | null
  /** The Cookie header sent upstream (a browser session's cookies); null: none. */
  upstreamCookie: string | null
  /** The gateway has checked the request's Origin: Label Studio is sent the origin it expects. */
  originChecked: boolean
  /** A CORS preflight from a listed origin, answered by the gateway itself. */
  preflight: boolean
  /** A file the gateway served itself: which backend, found how, and what the storage answered. */
  media: {
    via: 'task' | 'project' | 'local' | 'upload' | 'link'
    backend: string | null
    /** The task or project id the file was checked against. */
    id: number | null
    /** How the task's references were found: a lookup in Label Studio, or the cache. */
    how: 'cache' | 'lookup' | null
    storage: { statusCode: number | null, ms: number | null } | null
  } | null
  /** Set once the access line is written, so that no request is logged twice. */
  logged: boolean
}

declare module 'fastify' {
  interface FastifyRequest {
    gate: GateState
  }
  interface FastifyContextConfig {
    /** Routes the gateway answers itself, without authentication: health and readiness. */
    internal?: boolean
  }
}

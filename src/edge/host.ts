import { isIP } from 'node:net'

// The Host header, read strictly: a DNS name, an IPv4 address or a bracketed IPv6 address, and an
// optional port. Anything else (userinfo, several colons, stray characters) is not a host.

const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
const DNS_NAME = new RegExp(`^(?=.{1,253}$)${LABEL}(?:\\.${LABEL})*$`)

export interface HostHeader { hostname: string, port: number | null }

export function parseHostHeader (value: string | undefined): HostHeader | null {
  if (value === undefined) return null
  const match = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+)(?::([0-9]{1,5}))?$/.exec(value)
  if (!match) return null
  const hostname = match[1] as string
  const port = match[2] === undefined ? null : Number(match[2])
  if (port !== null && (port < 1 || port > 65535)) return null
  const bare = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname
  const valid = hostname.startsWith('[') ? isIP(bare) === 6 : isIP(bare) === 4 || DNS_NAME.test(bare)
  return valid ? { hostname: hostname.toLowerCase(), port } : null
}

/**
 * True when a Host header names one of the hosts the gateway serves. Names compare without case;
 * a listed name without a port matches the default HTTPS port and the gateway's own port.
 */
export function hostAllowed (
  value: string | undefined, allowed: ReadonlyArray<{ hostname: string, port: number | null }>, ownPort: number
): boolean {
  if (allowed.length === 0) return true
  const host = parseHostHeader(value)
  if (host === null) return false
  return allowed.some((a) => a.hostname === host.hostname &&
    (a.port === null
      ? host.port === null || host.port === 443 || host.port === ownPort
      : host.port === a.port ||
      (host.port === null && a.port === 443)))
}

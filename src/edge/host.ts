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
  return valid ? { hostname, port } : null
}

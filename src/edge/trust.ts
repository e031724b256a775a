import { BlockList, isIP } from 'node:net'

/** Builds the test for "this peer is a configured trusted proxy" from addresses and CIDR ranges. */
export function createTrust (entries: readonly string[]): (address: string | undefined) => boolean {
  if (entries.length === 0) return () => false
  const list = new BlockList()
  for (const entry of entries) {
    const [address, bits] = entry.split('/') as [string, string | undefined]
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4'
    if (bits === undefined) list.addAddress(address, family)
    else list.addSubnet(address, Number(bits), family)
  }
  return (address) => {
    if (address === undefined) return false
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
    const plain = mapped ? mapped[1] as string : address
    return list.check(plain, isIP(plain) === 6 ? 'ipv6' : 'ipv4')
  }
}

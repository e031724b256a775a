import t from 'tap'
import { createTrust } from '../../src/edge/trust.js'
import { parseHostHeader } from '../../src/edge/host.js'

t.test('trusted proxies by address and CIDR range, IPv4-mapped addresses included', async (t) => {
  const trusted = createTrust(['10.0.0.0/8', '192.168.1.7', '::1', 'fd00::/8'])
  for (const address of ['10.1.2.3', '::ffff:10.9.9.9', '192.168.1.7', '::1', 'fd12::1']) t.ok(trusted(address), address)
  for (const address of ['11.0.0.1', '192.168.1.8', '::2', 'fe80::1', undefined]) t.notOk(trusted(address), String(address))
  t.notOk(createTrust([])('127.0.0.1'), 'nothing is trusted by default')
})

t.test('Host headers are read strictly', async (t) => {
  t.same(parseHostHeader('labels.example.com'), { hostname: 'labels.example.com', port: null })
  t.same(parseHostHeader('localhost:8443'), { hostname: 'localhost', port: 8443 })
  t.same(parseHostHeader('[::1]:8443'), { hostname: '[::1]', port: 8443 })
  t.same(parseHostHeader('127.0.0.1'), { hostname: '127.0.0.1', port: null })
  for (const bad of [undefined, '', 'a:b:c', 'evil.example:1@x', 'x:0', 'x:70000', '[zz]', 'a_b.example', 'a..b', '-a.example', 'a b']) {
    t.equal(parseHostHeader(bad), null, String(bad))
  }
})

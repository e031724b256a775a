import type { GatewayConfig } from '../config/types.js'
import { EmbeddedIdentityStore } from './embedded-store.js'
import { RedisIdentityStore } from './redis-store.js'
import type { IdentityStore } from './store.js'

export function openIdentityStore (config: GatewayConfig['identity']): IdentityStore {
  return config.store.kind === 'redis'
    ? new RedisIdentityStore(config.store)
    : new EmbeddedIdentityStore(config.store.path)
}

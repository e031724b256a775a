import { Counter, Gauge, Registry } from 'prom-client'

// The gateway's Prometheus metrics, served at /-/metrics. Each gateway has a registry of its own, so
// that two gateways in one process (tests, or an embedding) never share or clash on a metric.

export type LimitBucket = 'user' | 'address' | 'auth-endpoint'

export interface GatewayMetrics {
  registry: Registry
  /** Requests answered 429, by the bucket that was full. */
  rateLimited: Counter<'bucket'>
  /** 1 while rate limits count in this process's memory because Redis does not answer. */
  rateLimitFallback: Gauge
  /** How many times rate limits have fallen back to counting in memory. */
  rateLimitFallbacks: Counter
}

export function createMetrics (): GatewayMetrics {
  const registry = new Registry()
  return {
    registry,
    rateLimited: new Counter({
      name: 'labelgate_rate_limited_total',
      help: 'Requests refused with 429, by the bucket that was full',
      labelNames: ['bucket'],
      registers: [registry]
    }),
    rateLimitFallback: new Gauge({
      name: 'labelgate_rate_limit_fallback',
      help: '1 while rate limits count in this process because Redis does not answer, else 0',
      registers: [registry]
    }),
    rateLimitFallbacks: new Counter({
      name: 'labelgate_rate_limit_fallbacks_total',
      help: 'Times rate limits fell back to counting in this process',
      registers: [registry]
    })
  }
}

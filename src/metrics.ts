import { Counter, Gauge, Histogram, Registry } from 'prom-client'

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
  /** Requests the gateway sent to storages, by backend and the storage's status ("error": no answer). */
  storageRequests: Counter<'backend' | 'status'>
  /** Seconds until a storage answered with its headers, by backend. */
  storageSeconds: Histogram<'backend'>
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
    }),
    storageRequests: new Counter({
      name: 'labelgate_storage_requests_total',
      help: 'Requests sent to storage backends, by backend and the status they answered (error: none)',
      labelNames: ['backend', 'status'],
      registers: [registry]
    }),
    storageSeconds: new Histogram({
      name: 'labelgate_storage_response_seconds',
      help: 'Time until a storage backend answered with its headers',
      labelNames: ['backend'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry]
    })
  }
}

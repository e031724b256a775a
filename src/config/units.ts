const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** `250ms`, `5s`, `10m`, `12h`, `90d` to milliseconds; null when the text is not such a duration. */
export function parseDuration (text: string): number | null {
  const match = /^([0-9]{1,9})(ms|s|m|h|d)$/.exec(text)
  if (!match) return null
  return Number(match[1]) * (UNIT_MS[match[2] as string] as number)
}

import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'node_modules/**', '.tap/**'] }),
  {
    files: ['src/**/*.ts'],
    rules: {
      '@stylistic/max-len': ['error', { code: 120, ignoreUrls: true }]
    }
  }
]

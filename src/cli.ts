#!/usr/bin/env node
import { main } from './cli/main.js'

const args = process.argv.slice(2)
const code = await main(args)
// `serve` keeps running on its open server; every other command ends here, even if a client
// library still holds a handle open.
if (code !== 0 || args[0] !== 'serve' || args.includes('--help') || args.includes('-h')) process.exit(code)

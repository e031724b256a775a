import t from 'tap'
import { isAuthEndpoint } from '../../src/limits/limits.js'

// The stricter bucket covers Label Studio's login, signup and token routes with everything under
// them, with or without the trailing slash, and nothing that merely starts with the same letters.

t.test('login, signup and token routes are auth endpoints', async (t) => {
  for (const path of [
    '/user/login/', '/user/login', '/user/signup/', '/api/current-user/token', '/api/current-user/reset-token/',
    '/api/token/', '/api/token', '/api/token/refresh/', '/api/token/rotate/', '/api/token/blacklist/',
    '/api/invite', '/api/invite/reset-token', '/api/invite/send-email'
  ]) t.ok(isAuthEndpoint(path), path)
})

t.test('neighbours are not', async (t) => {
  for (const path of [
    '/', '/user/loginx/', '/user/logout/', '/api/tokens/', '/api/current-user/whoami', '/api/invites/',
    '/api/projects/1/', '/api/current-user/token-x', '/static/user/login/'
  ]) t.notOk(isAuthEndpoint(path), path)
})

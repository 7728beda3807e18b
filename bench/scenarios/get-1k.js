// GET of a ~1 KB JSON order; the wrk script names a random order and user on every request
export default {
  name: 'get-1k',
  description: 'GET ~1 KB JSON',
  method: 'GET',
  path: '/api/orders/',
  script: 'random-user.lua',
  bodyBytes: 0
}

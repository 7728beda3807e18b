// POST of a 64 KiB JSON body, echoed back by the origin
export default {
  name: 'post-64k',
  description: 'POST 64 KiB JSON (echo)',
  method: 'POST',
  path: '/api/orders',
  script: 'post-64k.lua',
  bodyBytes: 65_536
}

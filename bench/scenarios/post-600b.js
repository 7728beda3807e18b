// POST of a 600-byte JSON order, echoed back by the origin
export default {
  name: 'post-600b',
  description: 'POST 600 B JSON (echo)',
  method: 'POST',
  path: '/api/orders',
  script: 'post-600b.lua',
  bodyBytes: 600
}

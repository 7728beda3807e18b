// the ~1 KB order both the origin answers and the compare micro-benchmark diff
export function sampleOrder (over = {}) {
  return {
    orderId: 'o-20261125-000042',
    status: 'paid',
    currency: 'CNY',
    createdAt: '2026-11-25T03:00:00.000Z',
    buyer: { id: 'u-42', name: 'Li Lei', tier: 'gold' },
    items: [
      { id: 'i-1', sku: 'SKU-0001', title: 'ceramic tea cup, 250 ml', qty: 2, price: 39.9 },
      { id: 'i-2', sku: 'SKU-0002', title: 'bamboo tray, large', qty: 1, price: 129 },
      { id: 'i-3', sku: 'SKU-0003', title: 'oolong tea, 100 g tin', qty: 3, price: 88.5 }
    ],
    shipping: { method: 'express', fee: 12, eta: '2026-11-27' },
    total: 474.3,
    ...over
  }
}

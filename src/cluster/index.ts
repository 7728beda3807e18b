export { runPrimary, workerCount, workerIndex, WORKER_INDEX_ENV, type Primary } from './primary.js'
export { IpcStore, callPrimary } from './ipc-store.js'

export { registerConsole, consoleFiles, compressAsset, precompressedName, negotiate, CONSOLE_CSP, CONSOLE_DIR, PRECOMPRESSED_DIR, type ConsoleDeps, type Coding } from './serve.js'

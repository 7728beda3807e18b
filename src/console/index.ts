export { registerConsole, CONSOLE_CSP, CONSOLE_DIR, type ConsoleDeps } from './serve.js'

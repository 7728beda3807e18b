// `dualtrack undo` works out its calls with the console's own console/undo.js (one code for the
// CLI and the console's Undo button, so both undo the same way); this file only types and loads it
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { AuditEntry, RolloutView } from './admin-client.js'

export interface UndoCall { readonly method: 'PUT' | 'POST', readonly path: string, readonly body: Readonly<Record<string, unknown>> }
export type UndoPlan = { readonly calls: readonly UndoCall[], readonly note?: string } | { readonly refused: string }
export type UndoOf = (name: string, e: AuditEntry, r: RolloutView | undefined, reason: string) => UndoPlan

/** console/ at the package root (src/cli and dist/cli are two deep) */
const UNDO_JS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'console', 'undo.js')

export async function loadUndo (): Promise<UndoOf> {
  const m = await import(pathToFileURL(UNDO_JS).href) as { undoOf: UndoOf }
  return m.undoOf
}

// the state file: the file store's whole state, and the Redis store's local copy for a start with
// Redis down; written atomically (a temp file renamed over it), so a crash never leaves half a file
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import type { AuditEntry, StateDoc } from './types.js'

export interface FileShape { doc: StateDoc, audit: AuditEntry[] }

/** read a state file written by either store; null when absent or unreadable */
export function readStateFile (file: string): FileShape | null {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as FileShape
    if (v && typeof v === 'object' && v.doc && typeof v.doc.version === 'number') return { doc: v.doc, audit: Array.isArray(v.audit) ? v.audit : [] }
  } catch { /* absent or torn: start from YAML */ }
  return null
}

export function writeStateFile (file: string, shape: FileShape): void {
  mkdirSync(dirname(file), { recursive: true })
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(shape))
  renameSync(tmp, file)
}


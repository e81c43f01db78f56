// Reading Kubernetes manifests from disk: one YAML or JSON file (several
// documents allowed, separated by ---) or a folder of them (*.yaml, *.yml,
// *.json, not descending, dotfiles skipped — editors' swap files).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { SourcedObject } from './k8s.js';

export const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.json'];

export interface ManifestRead {
  objects: SourcedObject[];
  /** Files that could not be read or parsed, with the reason. */
  errors: Array<{ source: string; message: string }>;
}

/** True for a file name readManifests() takes from a folder. */
export function isManifestName(name: string): boolean {
  return !name.startsWith('.') && MANIFEST_EXTENSIONS.some((ext) => name.endsWith(ext));
}

/** The documents of `path` (a file or a folder), each named `file` or `file#N` (N from 0). */
export function readManifests(path: string): ManifestRead {
  const out: ManifestRead = { objects: [], errors: [] };
  let files: string[];
  try {
    files = statSync(path).isDirectory()
      ? readdirSync(path)
          .filter(isManifestName)
          .sort()
          .map((name) => join(path, name))
      : [path];
  } catch (e) {
    out.errors.push({ source: path, message: (e as Error).message });
    return out;
  }
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      // Removed between listing and reading: the next event syncs again.
      out.errors.push({ source: file, message: (e as Error).message });
      continue;
    }
    // A .json file is one document: JSON.parse reads it some 50 times faster
    // than the YAML parser (seconds for a cluster's worth of objects); what
    // JSON.parse refuses goes to the YAML parser, whose errors name the spot.
    if (file.endsWith('.json')) {
      try {
        out.objects.push({ source: basename(file), object: JSON.parse(text) as unknown });
        continue;
      } catch {
        // reported below
      }
    }
    const docs = parseAllDocuments(text);
    const list = Array.isArray(docs) ? docs : [docs];
    list.forEach((doc, i) => {
      const source = list.length > 1 ? `${basename(file)}#${i}` : basename(file);
      const error = doc.errors[0];
      if (error !== undefined) out.errors.push({ source, message: error.message.split('\n')[0]! });
      else out.objects.push({ source, object: doc.toJS() });
    });
  }
  return out;
}

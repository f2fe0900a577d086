/**
 * fs.watch on the folders that file triggers look at, to react within milliseconds
 * where the file system reports changes. It is only a hint: the engine also looks at
 * every file trigger once per sampling interval, which covers file systems that report
 * nothing (NFS, Lustre) and folders that do not exist yet.
 */
import { type FSWatcher, watch } from "node:fs";
import { dirname } from "node:path";

export function watchPaths(paths: readonly string[], onChange: () => void): () => void {
  const watchers: FSWatcher[] = [];
  const folders = new Set<string>();
  for (const path of paths) {
    folders.add(path);
    folders.add(dirname(path)); // fileUpdated watches a file: its folder sees renames over it
  }
  for (const folder of folders) {
    try {
      const w = watch(folder, { persistent: false }, () => onChange());
      w.on("error", () => w.close());
      watchers.push(w);
    } catch {
      // Missing, or not a folder: polling covers it.
    }
  }
  return () => {
    for (const w of watchers) w.close();
  };
}

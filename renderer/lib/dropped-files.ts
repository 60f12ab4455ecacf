/**
 * What a drop on the page holds, in the browser: folders (through the File and Directory Entries API, read one
 * level deep) and plain files. The entries must be taken during the drop event; reading them can wait.
 */
export interface DroppedFolder {
  readonly name: string;
  readonly files: File[];
}

/** The entries of a drop, taken synchronously inside the event handler (null where the browser gives none). */
export function dropEntries(transfer: DataTransfer): (FileSystemEntry | null)[] {
  return [...transfer.items].map((item) => (item.kind === 'file' && typeof item.webkitGetAsEntry === 'function' ? item.webkitGetAsEntry() : null));
}

const fileOf = (entry: FileSystemFileEntry) => new Promise<File>((resolve, reject) => entry.file(resolve, reject));

async function folderFiles(dir: FileSystemDirectoryEntry): Promise<File[]> {
  const reader = dir.createReader();
  const entries: FileSystemEntry[] = [];
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (!batch.length) break;
    entries.push(...batch);
  }
  return Promise.all(entries.filter((e): e is FileSystemFileEntry => e.isFile).map(fileOf));
}

/** Folders dropped, with their files, and the plain files (from `files` where the browser gave no entries). */
export async function readDrop(entries: readonly (FileSystemEntry | null)[], files: readonly File[]): Promise<{ folders: DroppedFolder[]; files: File[] }> {
  if (!entries.some((e) => e)) return { folders: [], files: [...files] };
  const folders: DroppedFolder[] = [];
  const plain: File[] = [];
  for (const [i, entry] of entries.entries()) {
    if (entry?.isDirectory) folders.push({ name: entry.name, files: await folderFiles(entry as FileSystemDirectoryEntry) });
    else if (entry?.isFile) plain.push(await fileOf(entry as FileSystemFileEntry));
    else if (files[i]) plain.push(files[i]);
  }
  return { folders, files: plain };
}

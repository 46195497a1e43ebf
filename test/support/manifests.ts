import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';

/** A manifests file in a fresh temporary directory, rewritten atomically as editors do. */
export interface ManifestsFile {
  readonly path: string;
  write(objects: readonly unknown[]): Promise<void>;
  writeText(text: string): Promise<void>;
  remove(): Promise<void>;
}

export async function manifestsFile(objects: readonly unknown[] = []): Promise<ManifestsFile> {
  const dir = await mkdtemp(join(tmpdir(), 'klp-manifests-'));
  const path = join(dir, 'services.yaml');
  let n = 0;
  const writeText = async (text: string): Promise<void> => {
    const tmp = join(dir, `.services.yaml.${n++}`);
    await writeFile(tmp, text);
    await rename(tmp, path);
  };
  const file: ManifestsFile = {
    path,
    // No objects is written as a comment: a zero-byte file is one being written, and ignored.
    write: (objs) =>
      writeText(objs.length === 0 ? '# no objects\n' : objs.map((o) => stringify(o)).join('---\n')),
    writeText,
    remove: () => rm(dir, { recursive: true, force: true }),
  };
  await file.write(objects);
  return file;
}

/**
 * Compiles one bench script (and what it imports: src/core, src/storage, …)
 * into .bench-tmp/ with the repository's compiler options — the JavaScript
 * dist/ would hold — so that engines run as plain node, without tsx's
 * loader in their RSS or CPU. Inside the repository so that the output
 * resolves node_modules and the package's `"type": "module"`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const repoRoot = new URL('..', import.meta.url).pathname;

/** Compiles `bench/<name>.ts`; returns the path of its JavaScript. */
export function compileBench(name: string): string {
  const outDir = join(repoRoot, '.bench-tmp', name);
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const config = {
    extends: join(repoRoot, 'tsconfig.json'),
    compilerOptions: { rootDir: repoRoot, outDir, noEmit: false, declaration: false, sourceMap: false },
    files: [join(repoRoot, 'bench', `${name}.ts`)],
    include: [],
  };
  const configPath = join(outDir, 'tsconfig.json');
  writeFileSync(configPath, JSON.stringify(config));
  const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  const built = spawnSync(process.execPath, [tsc, '-p', configPath], { encoding: 'utf8' });
  const out = join(outDir, 'bench', `${name}.js`);
  if (built.status !== 0 || !existsSync(out)) {
    throw new Error(`Could not compile bench/${name}.ts (tsc exited with ${built.status}); fix these errors or run with --runtime tsx:\n${built.stdout}${built.stderr}`);
  }
  return out;
}

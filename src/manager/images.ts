// The manager's images: imported from local qcow2, raw and ISO files, or built from corral's
// recipes as jobs, each kept in its own folder `<stateDir>/images/<id>/` and recorded in the
// store. A folder is written in a hidden partial folder and renamed into place, so nothing
// half-written stays behind a failure, an abort or a killed daemon.

import { constants } from "node:fs";
import { access, copyFile, readdir, rm, stat } from "node:fs/promises";
import { basename, dirname, isAbsolute, join } from "node:path";
import { AbortedError, CorralError, ErrorCodes } from "../errors.ts";
import { removeStalePartials, writeDirAtomically } from "../host/atomic-dir.ts";
import { makeDirs } from "../host/make-dirs.ts";
import { buildImage } from "../images/build-image.ts";
import type { CachedImage } from "../images/image-cache.ts";
import { artifactNames, MANIFEST_FILE } from "../images/manifest.ts";
import { type ProgressEvent, stage } from "../images/progress.ts";
import { loadRecipe } from "../images/recipe.ts";
import { requireName } from "../store/columns.ts";
import { newId } from "../store/ids.ts";
import type { Image, ImageKind, NewImage } from "../store/images.ts";
import type { Store } from "../store/store.ts";
import { inspectImageFile, sha256OfFile } from "./image-file.ts";
import type { BuildImageRequest, ImportImageRequest } from "./image-schemas.ts";
import { type Job, type JobContext, JobService } from "./jobs.ts";

export type { Image, ImageFormat, ImageKind } from "../store/images.ts";
export type { BuildImageRequest, ImportImageRequest } from "./image-schemas.ts";

/** The kind of the jobs that build images; their subject is the recipe. */
export const IMAGE_BUILD_JOB = "image-build";

const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/** What a new image's folder holds, for its record. */
type ImageRecord = Omit<NewImage, "id" | "name">;

export class ImageService implements AsyncDisposable {
  /** Where the images' folders are: `<stateDir>/images`. */
  readonly dir: string;
  readonly jobs: JobService;
  readonly #store: Store;
  /** Ids of folders being written, which the sweep of leftovers must not take for orphans. */
  readonly #writing = new Set<string>();

  /**
   * @param store the manager's state
   * @param stateDir the manager's state folder; images go in its `images/`
   * @param options.jobs the manager's job service, if it has one (else the images' own)
   */
  constructor(store: Store, stateDir: string, options: { jobs?: JobService } = {}) {
    this.#store = store;
    this.dir = join(stateDir, "images");
    this.jobs = options.jobs ?? new JobService(store);
  }

  /** The images in the order they were added; only those of `kind` when given. */
  list(filter: { kind?: ImageKind } = {}): Image[] {
    return this.#store.images.list(filter);
  }

  /** The image with this id or name; throws CORRAL_NOT_FOUND when there is none. */
  get(idOrName: string): Image {
    return this.#store.images.get(idOrName);
  }

  /**
   * Imports the qcow2, raw or ISO file at `path` as image `name`: checks it (inspectImageFile),
   * copies it into the image's folder (a reflink where the filesystem can), checks the copy
   * again, computes its sha256 and compares it with `sha256` when given, and records it.
   * Throws CORRAL_INVALID_ARGUMENT for a bad name or path, a file that is refused, or a sha256
   * that differs (naming both); CORRAL_CONFLICT when the name is taken; CORRAL_ABORTED when
   * `signal` fires. Nothing is left behind when it throws.
   */
  async import(
    request: ImportImageRequest,
    options: { signal?: AbortSignal } = {},
  ): Promise<Image> {
    const { signal } = options;
    throwIfAborted(signal, `importing ${request.path}`);
    const name = this.#freeName(request.name);
    const source = await requireFile(request.path);
    const expected = request.sha256?.toLowerCase();
    const { format } = await inspectImageFile(source, request.format, signal);
    return this.#keep(name, async (folder) => {
      const path = join(folder, `${name}.${format}`);
      await copyFile(source, path, constants.COPYFILE_FICLONE);
      throwIfAborted(signal, `importing ${source}`);
      // What is kept is checked, not the source, which may have changed meanwhile.
      const copied = await inspectImageFile(path, request.format, signal);
      if (copied.format !== format) {
        throw new CorralError(
          ErrorCodes.CONFLICT,
          `image file ${source} changed while it was copied (${format}, then ${copied.format}): import it again once nothing writes to it`,
        );
      }
      const sha256 = await sha256OfFile(path, signal);
      if (expected !== undefined && sha256 !== expected) {
        throw new CorralError(
          ErrorCodes.INVALID_ARGUMENT,
          `image file ${source} has sha256 ${sha256}, not the expected ${expected}: it is not the file meant, or it was damaged on its way`,
        );
      }
      const { size } = await stat(path);
      return { kind: "imported", format, path, sha256, sizeBytes: size };
    });
  }

  /**
   * Builds `recipe` (a cache hit when the image cache has a verified build) as a job and
   * returns it; the job's result names the image, recorded as `name` (default: the recipe's)
   * with its kernel, initrd, root disk and start script copied into its folder. Throws
   * CORRAL_IMAGE_UNKNOWN for an unknown recipe, CORRAL_CONFLICT while the recipe is being built
   * or when the name is taken (a name taken while it builds fails the job instead).
   */
  build(request: BuildImageRequest): Job {
    const recipe = loadRecipe(request.recipe);
    const name = this.#freeName(request.name ?? recipe.name);
    return this.jobs.start({ kind: IMAGE_BUILD_JOB, subject: recipe.name }, (context) =>
      this.#runBuild(recipe.name, name, context),
    );
  }

  /**
   * Deletes the image and its folder; returns it. Throws CORRAL_NOT_FOUND when there is none,
   * CORRAL_CONFLICT naming the VMs and snapshots whose disks are on it.
   */
  async remove(idOrName: string): Promise<Image> {
    let image: Image;
    try {
      image = this.#store.images.remove(idOrName);
    } catch (error) {
      if (!(error instanceof CorralError) || error.code !== ErrorCodes.CONFLICT) throw error;
      throw new CorralError(ErrorCodes.CONFLICT, error.message, {
        cause: error,
        details: [
          "Delete those VMs (DELETE /v1/vms/{name}) and snapshots (DELETE /v1/snapshots/{id}) first, or keep the image.",
        ],
      });
    }
    const folder = join(this.dir, image.id);
    if (dirname(image.path) === folder) await rm(folder, { recursive: true, force: true });
    return image;
  }

  /** Aborts the image builds that are running and waits until they have cleaned up. */
  close(): Promise<void> {
    return this.jobs.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #runBuild(recipe: string, name: string, context: JobContext): Promise<object> {
    const { signal } = context;
    const stagesDone: string[] = [];
    const onProgress = (event: ProgressEvent) => {
      if (event.kind === "done") stagesDone.push(event.stage);
      context.reportProgress({
        stage: event.stage,
        status: event.kind,
        message: event.message,
        elapsedMs: Math.round(event.elapsedMs),
        stagesDone: [...stagesDone],
      });
    };
    const built = await buildImage(recipe, { signal, onProgress });
    throwIfAborted(signal, `building image ${name}`);
    const image = await stage(onProgress, "copy", "into the manager's state folder", () =>
      this.#keep(name, (folder) => copyBuild(built.image, folder)),
    );
    return { imageId: image.id, name: image.name, wasCached: built.wasCached };
  }

  /**
   * Writes the folder of a new image with `fill` (which returns the image's record) and records
   * it in the store; on failure neither the folder nor the record stays.
   */
  async #keep(name: string, fill: (folder: string) => Promise<ImageRecord>): Promise<Image> {
    await this.#sweep();
    const id = newId();
    const folder = join(this.dir, id);
    this.#writing.add(id);
    try {
      const record = await writeDirAtomically(folder, async (partial) => {
        const filled = await fill(partial);
        // The record names the file where it will be once the folder is renamed into place.
        return { ...filled, path: join(folder, basename(filled.path)) };
      });
      try {
        return this.#store.images.create({ id, ...record, name });
      } catch (error) {
        await rm(folder, { recursive: true, force: true });
        throw error;
      }
    } finally {
      this.#writing.delete(id);
    }
  }

  /** Removes what a killed daemon left: partial folders, and folders of images not recorded. */
  async #sweep(): Promise<void> {
    await makeDirs(this.dir, "image folder", 0o700);
    await removeStalePartials(this.dir);
    for (const entry of await readdir(this.dir)) {
      if (!ULID.test(entry) || this.#writing.has(entry) || this.#store.images.find(entry)) continue;
      await rm(join(this.dir, entry), { recursive: true, force: true });
    }
  }

  /** `name` if it is valid and no image has it; throws CORRAL_INVALID_ARGUMENT or CONFLICT. */
  #freeName(name: string): string {
    requireName(name, "image name");
    const holder = this.#store.images.find(name);
    if (holder && holder.name === name) {
      throw new CorralError(
        ErrorCodes.CONFLICT,
        `an image named "${name}" already exists (id ${holder.id}): delete it or choose another name`,
      );
    }
    return name;
  }
}

/** Copies a built image's files from the image cache into `folder`; returns its record. */
async function copyBuild(built: CachedImage, folder: string): Promise<ImageRecord> {
  const { manifest } = built;
  for (const file of [...artifactNames(manifest), MANIFEST_FILE]) {
    await copyFile(join(built.dir, file), join(folder, file), constants.COPYFILE_FICLONE);
  }
  const disk = manifest.artifacts["root.qcow2"];
  if (!disk) {
    throw new CorralError(ErrorCodes.IMAGE_BUILD_FAILED, `${built.dir} has no root.qcow2`);
  }
  return {
    kind: "built",
    recipe: manifest.recipe,
    format: "qcow2",
    path: join(folder, "root.qcow2"),
    sha256: disk.sha256,
    sizeBytes: disk.sizeBytes,
  };
}

/** `path` if it is an absolute path to a readable regular file; else CORRAL_INVALID_ARGUMENT. */
async function requireFile(path: string): Promise<string> {
  if (!isAbsolute(path)) {
    throw new CorralError(
      ErrorCodes.INVALID_ARGUMENT,
      `image path ${JSON.stringify(path)} must be absolute: the daemon reads it on its own host`,
    );
  }
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => {
    throw unreadable(path, error);
  });
  if (!info.isFile()) {
    throw new CorralError(ErrorCodes.INVALID_ARGUMENT, `image path ${path} is not a regular file`);
  }
  await access(path, constants.R_OK).catch((error: NodeJS.ErrnoException) => {
    throw unreadable(path, error);
  });
  return path;
}

function unreadable(path: string, error: NodeJS.ErrnoException): CorralError {
  const reasons: Record<string, string> = {
    ENOENT: "does not exist",
    EACCES: "cannot be read: permission denied",
    ENOTDIR: "does not exist: a part of its path is a file",
  };
  const why = reasons[error.code ?? ""] ?? `cannot be read: ${error.message}`;
  return new CorralError(ErrorCodes.INVALID_ARGUMENT, `image file ${path} ${why}`, {
    cause: error,
  });
}

function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new AbortedError(`${what}: aborted`);
}

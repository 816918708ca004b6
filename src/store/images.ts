// The images table: the disk images and ISOs VMs are made from — built from a recipe by corral's
// image builder, or imported from a local file. An image cannot be deleted while a VM or a
// snapshot still has a disk on it.

import { CorralError, ErrorCodes } from "../errors.ts";
import {
  invalid,
  now,
  requireAbsolutePath,
  requireCount,
  requireName,
  requireOneOf,
} from "./columns.ts";
import type { Database } from "./database.ts";
import { idFor } from "./ids.ts";
import { uniqueConflict } from "./sqlite-errors.ts";

export const IMAGE_KINDS = ["built", "imported"] as const;
export type ImageKind = (typeof IMAGE_KINDS)[number];
export const IMAGE_FORMATS = ["qcow2", "raw", "iso"] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];

export interface Image {
  id: string;
  /** Unique among images: lower-case letters, digits, ".", "_", "-". */
  name: string;
  kind: ImageKind;
  /** The recipe a built image was built from; null for an imported one. */
  recipe: string | null;
  /** As `qemu-img info` reports it. */
  format: ImageFormat;
  /** The image file; unique among images. */
  path: string;
  /** Of the file, in lower-case hex. */
  sha256: string;
  sizeBytes: number;
  createdAt: string;
}

export interface NewImage {
  id?: string;
  name: string;
  kind: ImageKind;
  recipe?: string | null;
  format: ImageFormat;
  path: string;
  sha256: string;
  sizeBytes: number;
}

interface ImageRow {
  id: string;
  name: string;
  kind: ImageKind;
  recipe: string | null;
  format: ImageFormat;
  path: string;
  sha256: string;
  size_bytes: number;
  created_at: string;
}

export class ImageRepository {
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
  }

  /**
   * Records an image. Throws CORRAL_CONFLICT when its name or file is another image's,
   * CORRAL_INVALID_ARGUMENT for a bad field (a built image needs its recipe, an imported one has
   * none).
   */
  create(input: NewImage): Image {
    const id = idFor("image", input.id);
    const name = requireName(input.name, "image name");
    const kind = requireOneOf(input.kind, IMAGE_KINDS, "image kind");
    const recipe = input.recipe ?? null;
    if ((kind === "built") !== (recipe !== null)) {
      throw invalid(
        "image recipe",
        recipe,
        kind === "built" ? "is needed for a built image" : "is only for built images",
      );
    }
    const format = requireOneOf(input.format, IMAGE_FORMATS, "image format");
    const path = requireAbsolutePath(input.path, "image path");
    if (!/^[0-9a-f]{64}$/.test(input.sha256)) {
      throw invalid("image sha256", input.sha256, "must be 64 lower-case hex digits");
    }
    const sizeBytes = requireCount(input.sizeBytes, "image size");
    return this.#db.transaction(() => {
      try {
        this.#db
          .prepare(
            `INSERT INTO images (id, name, kind, recipe, format, path, sha256, size_bytes, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(id, name, kind, recipe, format, path, input.sha256, sizeBytes, now());
      } catch (error) {
        throw uniqueConflict(error, {
          "images.name": `an image named "${name}" already exists`,
          "images.path": `the file ${path} is already image "${this.#nameOfPath(path)}"`,
          "images.id": `an image with id ${id} already exists`,
        });
      }
      return this.get(id);
    });
  }

  /** The image with this id, or else with this name, if there is one. */
  find(idOrName: string): Image | undefined {
    const row = (this.#db.prepare("SELECT * FROM images WHERE id = ?").get(idOrName) ??
      this.#db.prepare("SELECT * FROM images WHERE name = ?").get(idOrName)) as
      | ImageRow
      | undefined;
    return row && toImage(row);
  }

  /** The image with this id or name; throws CORRAL_NOT_FOUND when there is none. */
  get(idOrName: string): Image {
    const image = this.find(idOrName);
    if (!image) {
      throw new CorralError(ErrorCodes.NOT_FOUND, `no image with id or name "${idOrName}"`);
    }
    return image;
  }

  /** The images in the order they were added; only those of `kind` when given. */
  list(filter: { kind?: ImageKind } = {}): Image[] {
    const rows = (filter.kind === undefined
      ? this.#db.prepare("SELECT * FROM images ORDER BY rowid").all()
      : this.#db
          .prepare("SELECT * FROM images WHERE kind = ? ORDER BY rowid")
          .all(requireOneOf(filter.kind, IMAGE_KINDS, "image kind"))) as unknown as ImageRow[];
    return rows.map(toImage);
  }

  /**
   * Deletes the image's row (its file is the caller's to remove) and returns it. Throws
   * CORRAL_NOT_FOUND when it is gone, CORRAL_CONFLICT naming the VMs and snapshots on it.
   */
  remove(idOrName: string): Image {
    return this.#db.transaction(() => {
      const image = this.get(idOrName);
      const users = this.#db
        .prepare(
          `SELECT 'VM "' || name || '"' AS user FROM vms WHERE image_id = ?1
           UNION ALL
           SELECT 'snapshot "' || name || '" of VM "' || vm_name || '"' FROM snapshots
           WHERE image_id = ?1
           ORDER BY 1`,
        )
        .all(image.id) as { user: string }[];
      if (users.length > 0) {
        throw new CorralError(
          ErrorCodes.CONFLICT,
          `image "${image.name}" is in use by ${users.map((row) => row.user).join(", ")}: delete them first`,
        );
      }
      this.#db.prepare("DELETE FROM images WHERE id = ?").run(image.id);
      return image;
    });
  }

  #nameOfPath(path: string): string | undefined {
    const row = this.#db.prepare("SELECT name FROM images WHERE path = ?").get(path) as
      | { name: string }
      | undefined;
    return row?.name;
  }
}

function toImage(row: ImageRow): Image {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    recipe: row.recipe,
    format: row.format,
    path: row.path,
    sha256: row.sha256,
    sizeBytes: row.size_bytes,
    createdAt: row.created_at,
  };
}

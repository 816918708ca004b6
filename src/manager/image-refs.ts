// What a VM's `image` names, resolved once when the VM is made: an image in the store (by id or
// name) — built from a recipe, or an imported disk or ISO — or else a corral recipe or image-cache
// entry (debian-12). A recipe is pinned to its current build's cache id, so that a later change of
// the recipe never changes the disk under an existing VM.

import { join } from "node:path";
import { findImage } from "../images/image-cache.ts";
import type { Store } from "../store/store.ts";
import { virtualSizeOf } from "./image-file.ts";

export type ResolvedImage =
  /**
   * A corral image in the image cache: its start script, kernel and root disk. `hasCloudInit`:
   * its packages include cloud-init (a cloud image, as `debian-12-cloud`).
   */
  | {
      kind: "corral";
      cacheId: string;
      storeImageId: string | null;
      diskBytes: number;
      hasCloudInit: boolean;
    }
  /** An imported disk image the VM boots from (its disk is an overlay on it). */
  | {
      kind: "disk";
      path: string;
      format: "qcow2" | "raw";
      storeImageId: string;
      diskBytes: number;
    }
  /** An imported ISO, attached as a CD-ROM beside an empty disk. */
  | { kind: "iso"; path: string; storeImageId: string }
  /** No image: an empty disk. */
  | { kind: "none" };

/**
 * Resolves `ref`, with the size of the disk it gives (as the guest sees it, from qemu-img).
 * Throws CORRAL_IMAGE_UNKNOWN (naming the recipes and built images there are) when it is neither
 * in the store nor a recipe, CORRAL_IMAGE_NOT_BUILT for a recipe with no current build.
 */
export async function resolveImage(store: Store, ref: string | undefined): Promise<ResolvedImage> {
  if (ref === undefined) return { kind: "none" };
  const stored = store.images.find(ref);
  if (stored?.kind === "built" && stored.recipe !== null) {
    return { ...(await corralImage(stored.recipe)), storeImageId: stored.id };
  }
  if (stored?.format === "iso") return { kind: "iso", path: stored.path, storeImageId: stored.id };
  if (stored) {
    return {
      kind: "disk",
      path: stored.path,
      format: stored.format,
      storeImageId: stored.id,
      diskBytes: await virtualSizeOf(stored.path, stored.format),
    };
  }
  return { ...(await corralImage(ref)), storeImageId: null };
}

async function corralImage(nameOrId: string) {
  const cached = await findImage(nameOrId);
  return {
    kind: "corral" as const,
    cacheId: cached.manifest.id,
    diskBytes: await virtualSizeOf(join(cached.dir, "root.qcow2"), "qcow2"),
    hasCloudInit: "cloud-init" in cached.manifest.packages,
  };
}

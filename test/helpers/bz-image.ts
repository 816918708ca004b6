// A made-up x86 bzImage for the vmlinux tests: the boot protocol 2.15 header fields that locate
// the compressed payload, nothing more.

/** A bzImage whose header says `payload` (a compressed kernel) is where it put it. */
export function bzImage(payload: Buffer): Buffer {
  const setupSectors = 4;
  const offset = 64;
  const image = Buffer.alloc((setupSectors + 1) * 512 + offset + payload.length + 4);
  image[0x1f1] = setupSectors;
  image.write("HdrS", 0x202, "latin1");
  image.writeUInt16LE(0x20f, 0x206);
  image.writeUInt32LE(offset, 0x248);
  image.writeUInt32LE(payload.length, 0x24c);
  payload.copy(image, (setupSectors + 1) * 512 + offset);
  return image;
}

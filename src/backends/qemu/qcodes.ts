// Key names (as the NixOS driver writes them) to QEMU qcodes: the same, but for a few aliases.

const ALIASES: Record<string, string> = {
  del: "delete",
  enter: "ret",
  return: "ret",
  space: "spc",
};

export function toQcode(key: string): string {
  return ALIASES[key] ?? key;
}

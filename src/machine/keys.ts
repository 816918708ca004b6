// Keys by name, as the NixOS driver writes them ("ctrl-alt-delete", "shift-a"), and the key
// presses that type a character. The names are QEMU's qcodes, which the NixOS driver passes on as
// they are; each backend maps them to its own codes.

const CHAR_KEYS: Record<string, string> = {
  "\n": "ret",
  " ": "spc",
  "\t": "tab",
  "-": "minus",
  "=": "equal",
  "[": "bracket_left",
  "]": "bracket_right",
  ";": "semicolon",
  "'": "apostrophe",
  "`": "grave_accent",
  "\\": "backslash",
  ",": "comma",
  ".": "dot",
  "/": "slash",
  _: "shift-minus",
  "+": "shift-equal",
  "{": "shift-bracket_left",
  "}": "shift-bracket_right",
  ":": "shift-semicolon",
  '"': "shift-apostrophe",
  "~": "shift-grave_accent",
  "|": "shift-backslash",
  "<": "shift-comma",
  ">": "shift-dot",
  "?": "shift-slash",
  "!": "shift-1",
  "@": "shift-2",
  "#": "shift-3",
  $: "shift-4",
  "%": "shift-5",
  "^": "shift-6",
  "&": "shift-7",
  "*": "shift-8",
  "(": "shift-9",
  ")": "shift-0",
};

/** "ctrl-alt-delete" → ["ctrl", "alt", "delete"]: the key names, which each backend maps. */
export function keyCombo(combo: string): string[] {
  return combo.split("-").filter(Boolean);
}

/** The key combination that types `char` on a US keyboard; undefined for characters it cannot. */
export function charToKeyCombo(char: string): string | undefined {
  if (/^[a-z0-9]$/.test(char)) return char;
  if (/^[A-Z]$/.test(char)) return `shift-${char.toLowerCase()}`;
  return CHAR_KEYS[char];
}

// Joins program arguments into one shell command line, each word single-quoted where needed.

const SAFE_WORD = /^[\w@%+=:,./-]+$/;

export function shellQuote(word: string): string {
  if (word !== "" && SAFE_WORD.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export function shellJoin(words: readonly string[]): string {
  return words.map(shellQuote).join(" ");
}

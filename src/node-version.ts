// corral needs Node.js 24 (module.registerHooks, AsyncDisposableStack, type stripping). On older
// versions its modules fail to link with an error that does not say why, so both entry points
// (the `corral` command and `import "corral"`) run this check before loading anything else.

const MIN_NODE_MAJOR = 24;

/** Why Node.js `version` (at `execPath`) cannot run corral and how to fix it; undefined if it can. */
export function unsupportedNodeMessage(version: string, execPath: string): string | undefined {
  if (Number(version.split(".")[0]) >= MIN_NODE_MAJOR) return undefined;
  return (
    `corral needs Node.js ${MIN_NODE_MAJOR} or newer (this is Node.js ${version}, ${execPath}).\n` +
    `Install it from https://nodejs.org, or into your project with \`npm i -D node@${MIN_NODE_MAJOR}\` ` +
    "and run corral and your tests through npm scripts or npx, which put the project's Node.js " +
    "first on PATH."
  );
}

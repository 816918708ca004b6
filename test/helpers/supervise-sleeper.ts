// Starts a supervised process group, prints its id and waits to be killed (for the SIGKILL test).

import { SupervisedProcess } from "../../src/host/supervised-process.ts";

const proc = await SupervisedProcess.spawn("sh", ["-c", "sleep 300 & sleep 300"]);
process.stdout.write(`${proc.pid}\n`);
setInterval(() => {}, 1000);

// The two-machine scenario with machines from start scripts, as the NixOS driver runs them:
//
//   corral image scripts server client --vlans 1 --out /tmp/vms
//   corral test examples/two-machines-start-scripts.ts \
//     --start-scripts /tmp/vms/run-server-vm /tmp/vms/run-client-vm --vlans 1

export { scenario as default } from "./two-machines.ts";

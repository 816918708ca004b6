// The PowerShell script corral's Windows setup media runs at the first logon: it finds the
// virtio-win ISO, installs its drivers package (when the ISO has one) and the QEMU guest agent
// silently, and makes the agent's service start automatically. Not verified on a real Windows
// guest.

/** The agent's installer on the virtio-win ISO, and its service name (qemu's qga/installer/qemu-ga.wxs). */
export const QEMU_GA_MSI = "guest-agent\\qemu-ga-x86_64.msi";
export const QEMU_GA_SERVICE = "QEMU-GA";
/** virtio-win's all-drivers installer (vioserial among them, which the agent talks through). */
export const VIRTIO_DRIVERS_MSI = "virtio-win-gt-x64.msi";

/** Where the script logs in the guest (a transcript, and msiexec's own log). */
export const FIRST_LOGON_LOG = "C:\\Windows\\Temp\\corral-first-logon.log";

/**
 * The script, ASCII with CRLF line ends (Windows PowerShell 5.1 reads a file without a byte
 * order mark in the ANSI code page). msiexec exit 3010 means "installed, restart needed".
 */
export function firstLogonScript(): string {
  const lines = [
    "# corral: install the QEMU guest agent from the virtio-win ISO (run once, at first logon).",
    "$ErrorActionPreference = 'Stop'",
    `Start-Transcript -Path '${FIRST_LOGON_LOG}' -Append`,
    "function Install-Msi($path, $log) {",
    "  $process = Start-Process -FilePath msiexec.exe -ArgumentList @('/i', $path, '/qn', '/norestart', '/l*v', $log) -Wait -PassThru",
    '  if ($process.ExitCode -ne 0 -and $process.ExitCode -ne 3010) { throw "corral: $path exited with $($process.ExitCode); see $log" }',
    "}",
    `$drive = Get-PSDrive -PSProvider FileSystem | Where-Object { Test-Path -LiteralPath (Join-Path $_.Root '${QEMU_GA_MSI}') } | Select-Object -First 1`,
    `if (-not $drive) { throw 'corral: no drive holds ${QEMU_GA_MSI}; attach the virtio-win ISO and run this script again' }`,
    `$drivers = Join-Path $drive.Root '${VIRTIO_DRIVERS_MSI}'`,
    "if (Test-Path -LiteralPath $drivers) { Install-Msi $drivers 'C:\\Windows\\Temp\\virtio-win-gt-install.log' }",
    `Install-Msi (Join-Path $drive.Root '${QEMU_GA_MSI}') 'C:\\Windows\\Temp\\qemu-ga-install.log'`,
    `Set-Service -Name '${QEMU_GA_SERVICE}' -StartupType Automatic`,
    `Start-Service -Name '${QEMU_GA_SERVICE}'`,
    `Get-Service -Name '${QEMU_GA_SERVICE}'`,
    "Stop-Transcript",
  ];
  return `${lines.join("\r\n")}\r\n`;
}

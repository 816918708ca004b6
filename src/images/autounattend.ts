// The Windows Setup answer file (autounattend.xml) that installs Windows on a corral VM without
// questions: virtio drivers from the virtio-win ISO during setup, a UEFI disk layout, a local
// administrator, and at first logon the QEMU guest agent. Setting names and passes as in
// Microsoft's "Unattended Windows Setup Reference"
// (https://learn.microsoft.com/en-us/windows-hardware/customize/desktop/unattend/).
// Not verified with a real Windows install (none can run here).

import { CorralError, ErrorCodes } from "../errors.ts";
import { xmlElement as el, renderXml, xmlText as text, type XmlElement } from "./xml-document.ts";

/** The answer file's namespace, and the one its `wcm:` attributes live in. */
export const UNATTEND_NAMESPACE = "urn:schemas-microsoft-com:unattend";
export const WCM_NAMESPACE = "http://schemas.microsoft.com/WMIConfig/2002/State";

/** Drive letters the setup media may get, in the order they are tried. */
export const DRIVE_LETTERS = [..."DEFGHIJKLMNOPQRSTUVWXYZ"];

/** Where the first-logon script lives on corral's setup ISO. */
export const FIRST_LOGON_SCRIPT = "corral\\first-logon.ps1";

export interface AutounattendOptions {
  /** The local administrator account setup creates and logs on once (1–20 characters). */
  adminUser: string;
  adminPassword: string;
  /**
   * Folders of the virtio-win ISO whose drivers setup loads (and adds to the installed
   * system), relative to its root: `viostor\w11\amd64`… Each is tried on every drive letter.
   */
  driverFolders: readonly string[];
  /** UI language and locales (default `en-US`): one the install media has. */
  locale?: string;
  /** Windows time zone id (default `UTC`), e.g. `W. Europe Standard Time`. */
  timeZone?: string;
  /** NetBIOS computer name (default `*`: setup picks one). */
  computerName?: string;
  /** The edition in install.wim/esd: its index (default 1) or its name. */
  image?: { index: number } | { name: string };
  /** A product key; without one, media that asks for a key stops at that page. */
  productKey?: string;
}

/** The answer file for `options`. Throws CORRAL_INVALID_ARGUMENT for a value setup would refuse. */
export function autounattendXml(options: AutounattendOptions): string {
  const locale = options.locale ?? "en-US";
  validate(options, locale);
  const root = el(
    "unattend",
    { xmlns: UNATTEND_NAMESPACE, "xmlns:wcm": WCM_NAMESPACE },
    windowsPE(options, locale),
    el(
      "settings",
      { pass: "specialize" },
      component(
        "Microsoft-Windows-Shell-Setup",
        text("ComputerName", options.computerName ?? "*"),
        text("TimeZone", options.timeZone ?? "UTC"),
      ),
    ),
    oobeSystem(options, locale),
  );
  return renderXml(root);
}

function windowsPE(options: AutounattendOptions, locale: string): XmlElement {
  const driverPaths = DRIVE_LETTERS.flatMap((letter) =>
    options.driverFolders.map((folder) => `${letter}:\\${folder}`),
  );
  // Windows 11 setup refuses a VM without TPM 2.0 and Secure Boot (windows-default has neither)
  // unless these LabConfig values are set while it runs.
  const bypasses = ["BypassTPMCheck", "BypassSecureBootCheck", "BypassRAMCheck"];
  const image = options.image ?? { index: 1 };
  return el(
    "settings",
    { pass: "windowsPE" },
    component(
      "Microsoft-Windows-International-Core-WinPE",
      el("SetupUILanguage", {}, text("UILanguage", locale)),
      ...locales(locale),
    ),
    component(
      "Microsoft-Windows-PnpCustomizationsWinPE",
      el(
        "DriverPaths",
        {},
        ...driverPaths.map((path, i) =>
          el("PathAndCredentials", added(i + 1, true), text("Path", path)),
        ),
      ),
    ),
    component(
      "Microsoft-Windows-Setup",
      diskConfiguration(),
      el(
        "ImageInstall",
        {},
        el(
          "OSImage",
          {},
          el(
            "InstallFrom",
            {},
            el(
              "MetaData",
              added(),
              text("Key", "index" in image ? "/IMAGE/INDEX" : "/IMAGE/NAME"),
              text("Value", "index" in image ? image.index : image.name),
            ),
          ),
          el("InstallTo", {}, text("DiskID", 0), text("PartitionID", 3)),
        ),
      ),
      el(
        "RunSynchronous",
        {},
        ...bypasses.map((value, i) =>
          el(
            "RunSynchronousCommand",
            added(),
            text("Order", i + 1),
            text("Path", `reg add HKLM\\SYSTEM\\Setup\\LabConfig /v ${value} /t REG_DWORD /d 1 /f`),
          ),
        ),
      ),
      el(
        "UserData",
        {},
        text("AcceptEula", true),
        ...(options.productKey
          ? [el("ProductKey", {}, text("Key", options.productKey), text("WillShowUI", "OnError"))]
          : []),
      ),
    ),
  );
}

/** Disk 0 wiped and laid out for UEFI: EFI system (FAT32), MSR, Windows (NTFS, the rest). */
function diskConfiguration(): XmlElement {
  const create = (order: number, type: string, size?: number) =>
    el(
      "CreatePartition",
      added(),
      text("Order", order),
      text("Type", type),
      size === undefined ? text("Extend", true) : text("Size", size),
    );
  const modify = (order: number, id: number, ...settings: XmlElement[]) =>
    el("ModifyPartition", added(), text("Order", order), text("PartitionID", id), ...settings);
  return el(
    "DiskConfiguration",
    {},
    el(
      "Disk",
      added(),
      text("DiskID", 0),
      text("WillWipeDisk", true),
      // 260 MB: the EFI partition's size on 4Kn disks, fine on 512-byte ones too.
      el("CreatePartitions", {}, create(1, "EFI", 260), create(2, "MSR", 16), create(3, "Primary")),
      el(
        "ModifyPartitions",
        {},
        // The MSR partition (2) is neither formatted nor labelled.
        modify(1, 1, text("Format", "FAT32"), text("Label", "System")),
        modify(2, 3, text("Format", "NTFS"), text("Label", "Windows"), text("Letter", "C")),
      ),
    ),
    text("WillShowUI", "OnError"),
  );
}

function oobeSystem(options: AutounattendOptions, locale: string): XmlElement {
  const firstLogon = `cmd.exe /c for %d in (${DRIVE_LETTERS.join(" ")}) do @if exist %d:\\${FIRST_LOGON_SCRIPT} powershell.exe -NoProfile -ExecutionPolicy Bypass -File %d:\\${FIRST_LOGON_SCRIPT}`;
  return el(
    "settings",
    { pass: "oobeSystem" },
    component("Microsoft-Windows-International-Core", ...locales(locale)),
    component(
      "Microsoft-Windows-Shell-Setup",
      el(
        "AutoLogon",
        {},
        password(options.adminPassword),
        text("Enabled", true),
        text("LogonCount", 1),
        text("Username", options.adminUser),
      ),
      el(
        "FirstLogonCommands",
        {},
        el(
          "SynchronousCommand",
          added(),
          text("Order", 1),
          text("CommandLine", firstLogon),
          text("Description", "corral: install the QEMU guest agent from the virtio-win ISO"),
        ),
      ),
      el(
        "OOBE",
        {},
        text("HideEULAPage", true),
        text("HideLocalAccountScreen", true),
        text("HideOEMRegistrationScreen", true),
        text("HideOnlineAccountScreens", true),
        text("HideWirelessSetupInOOBE", true),
        text("ProtectYourPC", 3),
      ),
      el(
        "UserAccounts",
        {},
        el(
          "LocalAccounts",
          {},
          el(
            "LocalAccount",
            added(),
            password(options.adminPassword),
            text("Description", "created by corral image prepare-windows"),
            text("DisplayName", options.adminUser),
            text("Group", "Administrators"),
            text("Name", options.adminUser),
          ),
        ),
      ),
    ),
  );
}

/**
 * A password as Windows System Image Manager hides it (PlainText false): base64 of the UTF-16LE
 * text followed by the setting's name, `Password` for local accounts and AutoLogon. This only
 * keeps it from being read at a glance; it is not encryption.
 */
export function hiddenPassword(password: string, settingName = "Password"): string {
  return Buffer.from(`${password}${settingName}`, "utf16le").toString("base64");
}

function password(value: string): XmlElement {
  return el("Password", {}, text("Value", hiddenPassword(value)), text("PlainText", false));
}

function locales(locale: string): XmlElement[] {
  return ["InputLocale", "SystemLocale", "UILanguage", "UserLocale"].map((name) =>
    text(name, locale),
  );
}

function component(name: string, ...settings: XmlElement[]): XmlElement {
  return el(
    "component",
    {
      name,
      processorArchitecture: "amd64",
      publicKeyToken: "31bf3856ad364e35",
      language: "neutral",
      versionScope: "nonSxS",
    },
    ...settings,
  );
}

/** The `wcm:action="add"` of list items; `wcm:keyValue` for those keyed by it. */
function added(key?: number, isKeyed = false): Record<string, string> {
  return isKeyed && key !== undefined
    ? { "wcm:action": "add", "wcm:keyValue": String(key) }
    : { "wcm:action": "add" };
}

function validate(options: AutounattendOptions, locale: string): void {
  const checks: [boolean, string][] = [
    [
      /^[A-Za-z0-9_-][A-Za-z0-9 ._-]{0,19}$/.test(options.adminUser) &&
        !/^(administrator|guest)$/i.test(options.adminUser),
      `admin user ${JSON.stringify(options.adminUser)}: 1 to 20 letters, digits, spaces, '.', '_' or '-', and not a built-in account`,
    ],
    [
      /^[^\p{Cc}]{1,127}$/u.test(options.adminPassword),
      "the admin password must be 1 to 127 characters without control characters",
    ],
    [
      /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})+$/.test(locale),
      `locale ${JSON.stringify(locale)}: e.g. en-US`,
    ],
    [
      /^[A-Za-z0-9 .+()-]{1,64}$/.test(options.timeZone ?? "UTC"),
      `time zone ${JSON.stringify(options.timeZone)}: a Windows time zone id, e.g. "W. Europe Standard Time"`,
    ],
    [
      /^(\*|(?!\d+$)[A-Za-z0-9-]{1,15})$/.test(options.computerName ?? "*"),
      `computer name ${JSON.stringify(options.computerName)}: 1 to 15 letters, digits or '-', not only digits`,
    ],
    [
      options.productKey === undefined || /^[A-Z0-9]{5}(-[A-Z0-9]{5}){4}$/.test(options.productKey),
      "the product key must be five groups of five letters or digits (XXXXX-XXXXX-XXXXX-XXXXX-XXXXX)",
    ],
    [
      options.image === undefined ||
        ("index" in options.image
          ? Number.isInteger(options.image.index) && options.image.index >= 1
          : options.image.name.length > 0),
      "the image index must be a positive integer, the image name not empty",
    ],
    [options.driverFolders.length > 0, "no driver folders: setup could not see the virtio disk"],
  ];
  const problems = checks.filter(([isOk]) => !isOk).map(([, problem]) => problem);
  if (problems.length > 0) {
    throw new CorralError(ErrorCodes.INVALID_ARGUMENT, `Windows answer file: ${problems[0]}`, {
      details: problems.slice(1),
    });
  }
}

// The Windows answer file, parsed with a real XML parser and checked against the structure of
// Microsoft's "Unattended Windows Setup Reference": passes, components and their settings.
// Whether Windows Setup accepts it is not verifiable here (no Windows install can run).

import type { Element } from "@xmldom/xmldom";
import { describe, expect, it } from "vitest";
import {
  type AutounattendOptions,
  autounattendXml,
  DRIVE_LETTERS,
  hiddenPassword,
  UNATTEND_NAMESPACE as NS,
  WCM_NAMESPACE,
} from "../../../src/images/autounattend.ts";
import { childElements, onlyElement, parseXmlStrict, textAt } from "../../helpers/xml.ts";

const OPTIONS: AutounattendOptions = {
  adminUser: "corral",
  adminPassword: `p<&>"'w`,
  driverFolders: ["viostor\\w11\\amd64", "NetKVM\\w11\\amd64", "vioserial\\w11\\amd64"],
};

function settings(root: Element, pass: string): Element {
  const [match, ...more] = childElements(root, NS, "settings").filter(
    (element) => element.getAttribute("pass") === pass,
  );
  if (!match || more.length > 0) throw new Error(`expected one ${pass} pass`);
  return match;
}

function component(pass: Element, name: string): Element {
  const [match] = childElements(pass, NS, "component").filter(
    (element) => element.getAttribute("name") === name,
  );
  if (!match) throw new Error(`no component ${name}`);
  return match;
}

function decodeHidden(value: string): string {
  return Buffer.from(value, "base64").toString("utf16le");
}

describe("autounattendXml", () => {
  const root = parseXmlStrict(autounattendXml(OPTIONS));

  it("is an unattend document with the windowsPE, specialize and oobeSystem passes", () => {
    expect(root.namespaceURI).toBe(NS);
    expect(root.localName).toBe("unattend");
    expect(
      childElements(root, NS, "settings").map((element) => element.getAttribute("pass")),
    ).toEqual(["windowsPE", "specialize", "oobeSystem"]);
    for (const element of Array.from(root.getElementsByTagNameNS(NS, "component"))) {
      expect(element.getAttribute("processorArchitecture")).toBe("amd64");
      expect(element.getAttribute("publicKeyToken")).toBe("31bf3856ad364e35");
      expect(element.getAttribute("language")).toBe("neutral");
      expect(element.getAttribute("versionScope")).toBe("nonSxS");
    }
  });

  it("points setup at the virtio-win driver folders on every drive letter from D: to Z:", () => {
    const pnp = component(settings(root, "windowsPE"), "Microsoft-Windows-PnpCustomizationsWinPE");
    const entries = childElements(onlyElement(pnp, NS, "DriverPaths"), NS, "PathAndCredentials");
    expect(DRIVE_LETTERS).toHaveLength(23);
    expect(entries.map((entry) => textAt(entry, NS, "Path"))).toEqual(
      DRIVE_LETTERS.flatMap((letter) => OPTIONS.driverFolders.map((f) => `${letter}:\\${f}`)),
    );
    expect(entries.map((entry) => entry.getAttributeNS(WCM_NAMESPACE, "keyValue"))).toEqual(
      entries.map((_, i) => String(i + 1)),
    );
    expect(new Set(entries.map((entry) => entry.getAttributeNS(WCM_NAMESPACE, "action")))).toEqual(
      new Set(["add"]),
    );
  });

  it("wipes disk 0 into EFI, MSR and Windows partitions and installs image 1 on the third", () => {
    const setup = component(settings(root, "windowsPE"), "Microsoft-Windows-Setup");
    const disk = onlyElement(setup, NS, "DiskConfiguration", "Disk");
    expect(textAt(disk, NS, "DiskID")).toBe("0");
    expect(textAt(disk, NS, "WillWipeDisk")).toBe("true");
    const created = childElements(onlyElement(disk, NS, "CreatePartitions"), NS, "CreatePartition");
    expect(
      created.map((p) => [
        textAt(p, NS, "Order"),
        textAt(p, NS, "Type"),
        childElements(p, NS, "Extend").length > 0
          ? `extend ${textAt(p, NS, "Extend")}`
          : textAt(p, NS, "Size"),
      ]),
    ).toEqual([
      ["1", "EFI", "260"],
      ["2", "MSR", "16"],
      ["3", "Primary", "extend true"],
    ]);
    const modified = childElements(
      onlyElement(disk, NS, "ModifyPartitions"),
      NS,
      "ModifyPartition",
    );
    expect(
      modified.map((p) => [
        textAt(p, NS, "Order"),
        textAt(p, NS, "PartitionID"),
        textAt(p, NS, "Format"),
        textAt(p, NS, "Label"),
      ]),
    ).toEqual([
      ["1", "1", "FAT32", "System"],
      ["2", "3", "NTFS", "Windows"],
    ]);
    expect(textAt(modified[1] as Element, NS, "Letter")).toBe("C");
    const image = onlyElement(setup, NS, "ImageInstall", "OSImage");
    expect(textAt(image, NS, "InstallFrom", "MetaData", "Key")).toBe("/IMAGE/INDEX");
    expect(textAt(image, NS, "InstallFrom", "MetaData", "Value")).toBe("1");
    expect(textAt(image, NS, "InstallTo", "DiskID")).toBe("0");
    expect(textAt(image, NS, "InstallTo", "PartitionID")).toBe("3");
    expect(textAt(setup, NS, "UserData", "AcceptEula")).toBe("true");
    expect(childElements(onlyElement(setup, NS, "UserData"), NS, "ProductKey")).toEqual([]);
  });

  it("lets Windows 11 setup past its TPM, Secure Boot and RAM checks", () => {
    const setup = component(settings(root, "windowsPE"), "Microsoft-Windows-Setup");
    const commands = childElements(
      onlyElement(setup, NS, "RunSynchronous"),
      NS,
      "RunSynchronousCommand",
    );
    expect(commands.map((command) => textAt(command, NS, "Path"))).toEqual(
      ["BypassTPMCheck", "BypassSecureBootCheck", "BypassRAMCheck"].map(
        (value) => `reg add HKLM\\SYSTEM\\Setup\\LabConfig /v ${value} /t REG_DWORD /d 1 /f`,
      ),
    );
  });

  it("sets the language in windowsPE and oobeSystem, the computer name and time zone in specialize", () => {
    const winpe = component(
      settings(root, "windowsPE"),
      "Microsoft-Windows-International-Core-WinPE",
    );
    expect(textAt(winpe, NS, "SetupUILanguage", "UILanguage")).toBe("en-US");
    const oobe = component(settings(root, "oobeSystem"), "Microsoft-Windows-International-Core");
    for (const name of ["InputLocale", "SystemLocale", "UILanguage", "UserLocale"]) {
      expect(textAt(winpe, NS, name)).toBe("en-US");
      expect(textAt(oobe, NS, name)).toBe("en-US");
    }
    const shell = component(settings(root, "specialize"), "Microsoft-Windows-Shell-Setup");
    expect(textAt(shell, NS, "ComputerName")).toBe("*");
    expect(textAt(shell, NS, "TimeZone")).toBe("UTC");
  });

  it("creates the administrator, logs on once and then installs qemu-ga, with OOBE skipped", () => {
    const shell = component(settings(root, "oobeSystem"), "Microsoft-Windows-Shell-Setup");
    const account = onlyElement(shell, NS, "UserAccounts", "LocalAccounts", "LocalAccount");
    expect(account.getAttributeNS(WCM_NAMESPACE, "action")).toBe("add");
    expect(textAt(account, NS, "Name")).toBe("corral");
    expect(textAt(account, NS, "Group")).toBe("Administrators");
    expect(textAt(account, NS, "Password", "PlainText")).toBe("false");
    expect(decodeHidden(textAt(account, NS, "Password", "Value"))).toBe(`p<&>"'wPassword`);
    const logon = onlyElement(shell, NS, "AutoLogon");
    expect(textAt(logon, NS, "Enabled")).toBe("true");
    expect(textAt(logon, NS, "LogonCount")).toBe("1");
    expect(textAt(logon, NS, "Username")).toBe("corral");
    expect(decodeHidden(textAt(logon, NS, "Password", "Value"))).toBe(`p<&>"'wPassword`);
    const command = onlyElement(shell, NS, "FirstLogonCommands", "SynchronousCommand");
    expect(textAt(command, NS, "Order")).toBe("1");
    expect(textAt(command, NS, "CommandLine")).toBe(
      "cmd.exe /c for %d in (D E F G H I J K L M N O P Q R S T U V W X Y Z) do @if exist %d:\\corral\\first-logon.ps1 powershell.exe -NoProfile -ExecutionPolicy Bypass -File %d:\\corral\\first-logon.ps1",
    );
    expect(textAt(command, NS, "CommandLine").length).toBeLessThanOrEqual(1024);
    const oobe = onlyElement(shell, NS, "OOBE");
    for (const name of ["HideEULAPage", "HideLocalAccountScreen", "HideOnlineAccountScreens"]) {
      expect(textAt(oobe, NS, name)).toBe("true");
    }
    expect(textAt(oobe, NS, "ProtectYourPC")).toBe("3");
  });

  it("never writes the password in the clear", () => {
    expect(autounattendXml({ ...OPTIONS, adminPassword: "Sekr1t-Passw0rd" })).not.toContain(
      "Sekr1t",
    );
  });

  it("takes an edition by name, a product key, a locale, a time zone and a computer name", () => {
    const custom = parseXmlStrict(
      autounattendXml({
        ...OPTIONS,
        image: { name: "Windows 11 Pro" },
        productKey: "W269N-WFGWX-YVC9B-4J6C9-T83GX",
        locale: "de-DE",
        timeZone: "W. Europe Standard Time",
        computerName: "build-01",
      }),
    );
    const setup = component(settings(custom, "windowsPE"), "Microsoft-Windows-Setup");
    expect(textAt(setup, NS, "ImageInstall", "OSImage", "InstallFrom", "MetaData", "Key")).toBe(
      "/IMAGE/NAME",
    );
    expect(textAt(setup, NS, "ImageInstall", "OSImage", "InstallFrom", "MetaData", "Value")).toBe(
      "Windows 11 Pro",
    );
    expect(textAt(setup, NS, "UserData", "ProductKey", "Key")).toBe(
      "W269N-WFGWX-YVC9B-4J6C9-T83GX",
    );
    const shell = component(settings(custom, "specialize"), "Microsoft-Windows-Shell-Setup");
    expect(textAt(shell, NS, "ComputerName")).toBe("build-01");
    expect(textAt(shell, NS, "TimeZone")).toBe("W. Europe Standard Time");
    const oobe = component(settings(custom, "oobeSystem"), "Microsoft-Windows-International-Core");
    expect(textAt(oobe, NS, "UserLocale")).toBe("de-DE");
  });

  it("refuses values setup would refuse, naming them", () => {
    for (const [change, pattern] of [
      [{ adminUser: "Administrator" }, /admin user/],
      [{ adminUser: "a/b" }, /admin user/],
      [{ adminUser: "x".repeat(21) }, /admin user/],
      [{ adminPassword: "" }, /admin password/],
      [{ adminPassword: "a\nb" }, /admin password/],
      [{ locale: "english" }, /locale/],
      [{ timeZone: "UTC; rm" }, /time zone/],
      [{ computerName: "a-very-long-computer-name" }, /computer name/],
      [{ computerName: "12345" }, /computer name/],
      [{ productKey: "abc" }, /product key/],
      [{ image: { index: 0 } }, /image index/],
      [{ driverFolders: [] }, /no driver folders/],
    ] as const) {
      expect(() => autounattendXml({ ...OPTIONS, ...change }), JSON.stringify(change)).toThrow(
        expect.objectContaining({
          code: "CORRAL_INVALID_ARGUMENT",
          message: expect.stringMatching(pattern),
        }),
      );
    }
  });
});

describe("hiddenPassword", () => {
  it("matches the examples in Microsoft's answer-file reference", () => {
    // …/microsoft-windows-shell-setup-useraccounts-localaccounts-localaccount-password-value
    // shows "cAB3AFAAYQBzAHMAdwBvAHIAZAA" (its "=" padding left out) for the password "pw";
    // …/microsoft-windows-shell-setup-useraccounts-administratorpassword-value shows the
    // AdministratorPassword form.
    expect(hiddenPassword("pw")).toBe("cAB3AFAAYQBzAHMAdwBvAHIAZAA=");
    expect(hiddenPassword("pw", "AdministratorPassword")).toBe(
      "cAB3AEEAZABtAGkAbgBpAHMAdAByAGEAdABvAHIAUABhAHMAcwB3AG8AcgBkAA==",
    );
  });
});

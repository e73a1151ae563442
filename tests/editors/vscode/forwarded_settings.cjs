// What the extension's own code (editors/vscode/out/settings.js, compiled) sends the server for
// user settings given as JSON in argv[2] ({key: value}, by their key under codeLlama), reading the
// contributed settings from package.json as the extension does. Prints the object sent as JSON.
const { readFileSync } = require("node:fs");
const { join } = require("node:path");

const extension = join(__dirname, "..", "..", "..", "editors", "vscode");
const { serverKeys, serverSettings } = require(join(extension, "out", "settings.js"));
const properties = JSON.parse(readFileSync(join(extension, "package.json"), "utf8")).contributes.configuration.properties;
const user = JSON.parse(process.argv[2]);
const source = {
  value: (key) => (key in user ? user[key] : properties[`codeLlama.${key}`]?.default),
  isSet: (key) => key in user,
};
process.stdout.write(JSON.stringify(serverSettings(source, serverKeys(properties))));

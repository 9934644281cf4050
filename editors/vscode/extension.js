// Starts `celery-chain-lint server` (LSP over stdio) for Python files: diagnostics as you
// type, fixes and `# noqa` as quick fixes, the rule's page on hover.
const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("celeryChainLint").get("path");
  const run = { command, args: ["server"], transport: TransportKind.stdio };
  client = new LanguageClient(
    "celeryChainLint",
    "celery-chain-lint",
    { run, debug: run },
    { documentSelector: [{ scheme: "file", language: "python" }] }
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };

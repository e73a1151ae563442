"""The server's protocol layer, driven in-process with raw messages: notifications leave nothing
behind (pygls 2.1 keeps a future per notification it runs as a generator or coroutine)."""

from __future__ import annotations

from code_llama_ls.lsp.server import server


class DiscardingWriter:
    def write(self, data) -> None:
        pass

    def close(self) -> None:
        pass


def send(message: dict) -> None:
    server.protocol.handle_message(server.protocol.structure_message(message))


def test_keystrokes_leave_no_futures_behind():
    server.protocol.set_writer(DiscardingWriter())
    send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
          "params": {"processId": None, "rootUri": None, "capabilities": {}}})
    uri = "file:///keystrokes.py"
    send({"jsonrpc": "2.0", "method": "textDocument/didOpen",
          "params": {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": ""}}})
    before = len(server.protocol._request_futures)
    for typed in range(300):
        here = {"line": 0, "character": typed}
        send({"jsonrpc": "2.0", "method": "textDocument/didChange",
              "params": {"textDocument": {"uri": uri, "version": typed + 2},
                         "contentChanges": [{"range": {"start": here, "end": here}, "text": "x"}]}})
    assert server.documents.get(uri).text == "x" * 300
    send({"jsonrpc": "2.0", "method": "textDocument/didClose", "params": {"textDocument": {"uri": uri}}})
    assert uri not in server.documents
    assert len(server.protocol._request_futures) <= before

"""The protocol layer: pygls server, one handler per LSP feature, conversion to lsprotocol types, framing."""

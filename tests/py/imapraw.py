"""A raw IMAP client for the tests' scripts: lines as the server wrote
them, commands written byte for byte (imaplib hides both, and has no IDLE
before Python 3.14)."""

import socket


class Raw:
    """A line-at-a-time IMAP client that writes commands byte for byte."""

    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=60)
        self.file = self.sock.makefile("rb")
        self.line()

    def line(self):
        line = self.file.readline()
        assert line, "the server closed the connection"
        return line.decode("utf-8", "replace")

    def send(self, text):
        """Sends one line (no tag added)."""
        self.sock.sendall(text.encode() + b"\r\n")

    def command(self, tag, data):
        """Sends `data` (bytes, literals and all) as command `tag`;
        returns the untagged lines and the tagged one."""
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(tag.encode() + b" " + data + b"\r\n")
        lines = []
        while True:
            line = self.line()
            if line.startswith(tag + " "):
                return lines, line
            lines.append(line)

    def ok(self, tag, data):
        lines, done = self.command(tag, data)
        assert done.startswith(tag + " OK"), (data, lines, done)
        return lines, done

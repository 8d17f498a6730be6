"""Two IMAP sessions of one user on its home node's gateway: what one
changes (flags and keywords, an expunge, a move, new mail), the other
hears while in IDLE, in order; then the other hears the same at NOOP.
The same user cannot log in at another node's gateway (its password and
keys are only at home). Prints "ok" at the end.

Usage: imap_sessions.py HOME_HOST:PORT OTHER_HOST:PORT USER PASSWORD
"""

import imaplib
import sys

from imapraw import Raw


def recent_count(line):
    """The number in a `* N RECENT` line."""
    parts = line.split()
    assert parts[0] == "*" and parts[2] == "RECENT", line
    return int(parts[1])


def main():
    home, other, user, password = sys.argv[1:5]
    host, port = home.rsplit(":", 1)

    writer = imaplib.IMAP4(host, int(port))
    writer.login(user, password)
    writer.create("sessions-moved")
    writer.create("sessions")
    for n in range(3):
        msg = "Subject: %d\r\n\r\nbody %d\r\n" % (n, n)
        assert writer.append("sessions", None, None, msg.encode())[0] == "OK"
    assert writer.select("sessions")[0] == "OK"

    idler = Raw(home)
    idler.ok("a", "LOGIN %s %s" % (user, password))
    selected = idler.ok("b", "SELECT sessions")[0]
    assert "* 3 EXISTS\r\n" in selected, selected
    idler.send("c IDLE")
    assert idler.line().startswith("+"), "no IDLE continuation"

    flags = "\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1"
    # (what the writer does, the lines the idler hears next). The writer
    # selected first, so nothing is \Recent in the idler's session.
    steps = [
        # A new keyword: FLAGS and PERMANENTFLAGS again, then the FETCH.
        (lambda: writer.store("1", "+FLAGS", "(\\Flagged $Label1)"),
         ["* FLAGS (%s)\r\n" % flags,
          "* OK [PERMANENTFLAGS (%s \\*)] flags that stay\r\n" % flags,
          "* 1 FETCH (FLAGS (\\Flagged $Label1) UID 1)\r\n"]),
        (lambda: writer.store("2", "+FLAGS.SILENT", "(\\Deleted)"),
         ["* 2 FETCH (FLAGS (\\Deleted) UID 2)\r\n"]),
        (lambda: writer.expunge(), ["* 2 EXPUNGE\r\n"]),
        (lambda: writer.uid("MOVE", "1", "sessions-moved"), ["* 1 EXPUNGE\r\n"]),
    ]
    for act, heard in steps:
        assert act()[0] == "OK"
        lines = [idler.line() for _ in heard]
        assert lines == heard, "heard %r, wanted %r" % (lines, heard)

    # New mail: both sessions hear it, and it is \Recent in exactly one of
    # them, whichever the gateway told first (RFC 3501 2.3.2).
    typ, data = writer.search(None, "RECENT")
    assert typ == "OK"
    writer_before = len(data[0].split())
    writer.response("RECENT")
    assert writer.append("sessions", None, None, b"Subject: new\r\n\r\nnew\r\n")[0] == "OK"
    assert idler.line() == "* 2 EXISTS\r\n"
    idler_recent = recent_count(idler.line())
    assert writer.noop()[0] == "OK"
    writer_recent = int(writer.response("RECENT")[1][-1]) - writer_before
    assert idler_recent + writer_recent == 1, (idler_recent, writer_recent)
    idler.send("DONE")
    assert idler.line().startswith("c OK")

    # Between commands the changes wait for NOOP.
    assert writer.store("1", "+FLAGS", "(\\Seen)")[0] == "OK"
    noop = idler.ok("d", "NOOP")[0]
    assert noop == ["* 1 FETCH (FLAGS (\\Seen) UID 3)\r\n"], noop
    idler.ok("e", "LOGOUT")
    writer.logout()

    host, port = other.rsplit(":", 1)
    stranger = imaplib.IMAP4(host, int(port))
    try:
        stranger.login(user, password)
        raise AssertionError("logged in at a node that does not host the user")
    except imaplib.IMAP4.error:
        pass
    print("ok")


if __name__ == "__main__":
    main()

"""MULTIAPPEND (RFC 3502) and CATENATE (RFC 4469) on a real node: one
APPEND of three messages says all their UIDs, and a session in IDLE
hears them arrive together (never one or two of them); a CATENATE puts a
stored message's header before new text; a MULTIAPPEND with a bad URL in
its second message appends nothing. Prints "ok" at the end.

Usage: imap_append.py HOST:PORT USER PASSWORD
"""

import re
import sys

from imapraw import Raw


def literal(data):
    """A LITERAL+ literal of `data`."""
    return b"{%d+}\r\n" % len(data) + data


def main():
    addr, user, password = sys.argv[1:4]
    writer = Raw(addr)
    writer.ok("a", "LOGIN %s %s" % (user, password))
    caps, _ = writer.ok("b", "CAPABILITY")
    assert " MULTIAPPEND" in caps[0] and " CATENATE" in caps[0], caps
    writer.ok("c", "CREATE multi")

    idler = Raw(addr)
    idler.ok("a", "LOGIN %s %s" % (user, password))
    selected, _ = idler.ok("b", "SELECT multi")
    assert "* 0 EXISTS\r\n" in selected, selected
    validity = re.search(r"UIDVALIDITY (\d+)", "".join(selected)).group(1)
    idler.sock.sendall(b"c IDLE\r\n")
    assert idler.line().startswith("+"), "no IDLE continuation"

    messages = [b"Subject: %d\r\n\r\nbody %d\r\n" % (n, n) for n in (1, 2, 3)]
    flags = [b"(\\Seen) ", b"", b"(\\Flagged) "]
    data = b"multi " + b" ".join(f + literal(m) for f, m in zip(flags, messages))
    _, done = writer.ok("d", b"APPEND " + data)
    assert "[APPENDUID %s 1:3]" % validity in done, done
    # All three at once: the first count the idler hears is three.
    assert idler.line() == "* 3 EXISTS\r\n"

    # A bad URL in the second message: nothing of the command is stored.
    bad = (b'APPEND multi CATENATE (URL "/multi/;UID=1") '
           b'CATENATE (URL "/multi;UIDVALIDITY=1/;UID=1")')
    _, done = writer.command("e", bad)
    assert done.startswith("e NO [BADURL /multi;UIDVALIDITY=1/;UID=1]"), done

    cat = (b'APPEND multi CATENATE (URL "/multi/;UID=2/;SECTION=HEADER" TEXT '
           + literal(b"new body\r\n") + b")")
    _, done = writer.ok("f", cat)
    assert "[APPENDUID %s 4]" % validity in done, done
    heard = idler.line()
    while "RECENT" in heard:
        heard = idler.line()
    assert heard == "* 4 EXISTS\r\n", heard
    idler.sock.sendall(b"DONE\r\n")
    while not idler.line().startswith("c OK"):
        pass

    writer.ok("g", "EXAMINE multi")
    fetched, _ = writer.ok("h", "FETCH 1:4 (FLAGS BODY.PEEK[])")
    text = "".join(fetched)
    assert text.count("FETCH") == 4, text
    assert "Subject: 2\r\n\r\nnew body\r\n" in text, text
    assert "FLAGS (\\Seen" in text and "FLAGS (\\Flagged" in text, text
    writer.ok("i", "LOGOUT")
    idler.ok("d", "LOGOUT")
    print("ok")


if __name__ == "__main__":
    main()

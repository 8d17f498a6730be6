r"""Prints, one per line, the folders an IMAP client sees (LIST "" "*"),
each with its message count (STATUS MESSAGES), as "name<TAB>count". A
\Noselect entry (the missing parent of a nested folder) is no folder and
is left out.

Usage: imap_folders.py HOST:PORT USER PASSWORD
"""

import imaplib
import re
import sys


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    imap = imaplib.IMAP4(host, int(port))
    imap.login(sys.argv[2], sys.argv[3])
    typ, lines = imap.list('""', "*")
    assert typ == "OK", lines
    for line in lines:
        # (\Flags) "/" name  -- the name quoted or an atom
        match = re.match(rb'\((.*?)\) (NIL|"[^"]*") (.*)$', line)
        assert match, line
        if b"\\noselect" in match.group(1).lower():
            continue
        name = match.group(3).decode()
        quoted = name if name.startswith('"') else '"%s"' % name
        typ, status = imap.status(quoted, "(MESSAGES)")
        assert typ == "OK", status
        count = re.search(rb"MESSAGES (\d+)", status[0]).group(1).decode()
        print("%s\t%s" % (name.strip('"'), count))
    imap.logout()


if __name__ == "__main__":
    main()

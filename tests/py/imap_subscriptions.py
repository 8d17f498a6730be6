r"""Subscriptions of names as an IMAP client sees them (RFC 5258's
LIST (SUBSCRIBED)). Two steps, so a node can be restarted between them:

  imap_subscriptions.py HOST:PORT USER PASSWORD make
      makes Old/Box and subscribes it, subscribes the name Never/Made that
      no folder has, makes Plain (CREATE does not subscribe), deletes
      Old/Box (its subscription stays);
  imap_subscriptions.py HOST:PORT USER PASSWORD show
      prints each line of LIST (SUBSCRIBED) "" "*" RETURN (STATUS
      (MESSAGES)) and GETQUOTAROOT INBOX, as the server sent them.
"""

import imaplib
import sys


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    imap = imaplib.IMAP4(host, int(port))
    imap.login(sys.argv[2], sys.argv[3])
    if sys.argv[4] == "make":
        for command, args in [
            ("CREATE", "Old/Box"),
            ("SUBSCRIBE", "Old/Box"),
            ("SUBSCRIBE", "Never/Made"),
            ("CREATE", "Plain"),
            ("DELETE", "Old/Box"),
        ]:
            typ, data = imap._simple_command(command, args)
            assert typ == "OK", (command, args, data)
    else:
        for command, args in [
            ("LIST", '(SUBSCRIBED) "" "*" RETURN (STATUS (MESSAGES))'),
            ("GETQUOTAROOT", "INBOX"),
        ]:
            typ, data = imap._simple_command(command, args)
            assert typ == "OK", (command, data)
            for name, lines in sorted(imap.untagged_responses.items()):
                for line in lines:
                    print("%s %s" % (name, line.decode()))
            imap.untagged_responses.clear()
    imap.logout()


if __name__ == "__main__":
    main()

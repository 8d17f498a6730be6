"""Sends one message with smtplib and prints how each recipient fared.

Usage: smtp_send.py HOST:PORT FROM TO[,TO...] MESSAGE_FILE [--login USER PASSWORD] [--starttls]
          [--ehlo NAME] [--mail-options OPT,...] [--rcpt-options OPT,...]

Prints `sent` when every recipient was accepted, else `refused CODE TEXT`
(the first refusal, of a recipient or of the data) and exits 0 either way:
the caller asserts what it expected. A failure to talk SMTP at all exits 1.
"""

import smtplib
import sys

args = sys.argv[1:]
host, port = args[0].rsplit(":", 1)
sender, recipients, path = args[1], args[2].split(","), args[3]
opts = args[4:]


def opt(name, n=1):
    if name not in opts:
        return None
    i = opts.index(name)
    return opts[i + 1 : i + 1 + n]


message = open(path, "rb").read()
smtp = smtplib.SMTP(host, int(port), local_hostname=(opt("--ehlo") or [None])[0], timeout=60)
if "--starttls" in opts:
    import ssl

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    smtp.starttls(context=context)
login = opt("--login", 2)
if login:
    smtp.login(login[0], login[1])
mail_options = (opt("--mail-options") or [""])[0].split(",") if opt("--mail-options") else []
rcpt_options = (opt("--rcpt-options") or [""])[0].split(",") if opt("--rcpt-options") else []
try:
    refused = smtp.sendmail(sender, recipients, message, mail_options, rcpt_options)
    if refused:
        rcpt, (code, text) = next(iter(refused.items()))
        print("refused", code, text.decode(errors="replace"))
    else:
        print("sent")
except smtplib.SMTPRecipientsRefused as e:
    rcpt, (code, text) = next(iter(e.recipients.items()))
    print("refused", code, text.decode(errors="replace"))
except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as e:
    print("refused", e.smtp_code, e.smtp_error.decode(errors="replace"))
try:
    smtp.quit()
except smtplib.SMTPServerDisconnected:
    pass

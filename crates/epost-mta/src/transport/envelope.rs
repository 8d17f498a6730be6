//! The envelope as the remote server is told it: `MAIL FROM` and
//! `RCPT TO` with the parameters it advertised (SIZE, BODY, SMTPUTF8,
//! DSN's RET/ENVID/NOTIFY/ORCPT), and what must be refused before a
//! single command is sent: a message too big for it, SMTPUTF8 it lacks,
//! an address that could not be written into a command. Pure.

use smtp_proto::{EXT_8BIT_MIME, EXT_DSN, EXT_SIZE, EXT_SMTP_UTF8, EhloResponse};

use crate::outbound::{Message, Notify, Recipient, Ret, Status};

/// `5.3.4`: the message is bigger than the server takes.
pub(crate) const TOO_BIG: Status = Status { class: 5, subject: 3, detail: 4 };
/// `5.6.7`: the message needs SMTPUTF8, which the server lacks (RFC 6531).
pub(crate) const NO_SMTPUTF8: Status = Status { class: 5, subject: 6, detail: 7 };
/// `5.1.3`: a recipient address that cannot be sent.
pub(crate) const BAD_RECIPIENT: Status = Status { class: 5, subject: 1, detail: 3 };
/// `5.1.7`: a sender address that cannot be sent.
pub(crate) const BAD_SENDER: Status = Status { class: 5, subject: 1, detail: 7 };

/// What the server said it can do, in its EHLO reply. `HELO` servers can
/// do nothing of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Extensions {
    pub(crate) starttls: bool,
    pub(crate) dsn: bool,
    pub(crate) smtputf8: bool,
    pub(crate) eight_bit_mime: bool,
    /// `SIZE`, and its limit when it named one (`SIZE` alone, or `0`: none).
    pub(crate) size: Option<usize>,
    pub(crate) auth: u64,
}

impl Extensions {
    pub(crate) fn from_ehlo(ehlo: &EhloResponse<String>) -> Self {
        Self {
            starttls: ehlo.has_capability(smtp_proto::EXT_START_TLS),
            dsn: ehlo.has_capability(EXT_DSN),
            smtputf8: ehlo.has_capability(EXT_SMTP_UTF8),
            eight_bit_mime: ehlo.has_capability(EXT_8BIT_MIME),
            size: ehlo.has_capability(EXT_SIZE).then_some(ehlo.size),
            auth: ehlo.auth_mechanisms,
        }
    }
}

/// Why the message cannot go to this server at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unsendable {
    pub(crate) status: Status,
    pub(crate) reason: String,
}

/// Whether `message` may go to a server with `ext`. An 8-bit body to a
/// server without 8BITMIME goes anyway (as Postfix does): converting it
/// would break the DKIM signature made at enqueue, and servers that
/// cannot take 8-bit bytes are all but gone.
pub(crate) fn check(host: &str, message: &Message<'_>, ext: &Extensions) -> Result<(), Unsendable> {
    if let Some(Some(limit)) = ext.size.map(|s| (s > 0).then_some(s))
        && message.body.len() > limit
    {
        return Err(Unsendable {
            status: TOO_BIG,
            reason: format!(
                "the message ({} bytes) is bigger than {host} takes ({limit} bytes)",
                message.body.len()
            ),
        });
    }
    if message.smtputf8 && !ext.smtputf8 {
        return Err(Unsendable {
            status: NO_SMTPUTF8,
            reason: format!("the message needs SMTPUTF8, which {host} does not offer"),
        });
    }
    if let Some(from) = message.reverse_path
        && !sendable(from)
    {
        return Err(Unsendable {
            status: BAD_SENDER,
            reason: format!("the sender {from:?} cannot be written into MAIL FROM"),
        });
    }
    Ok(())
}

/// Whether an address can go between `<` and `>` of a command: no
/// control characters (a CR or LF would end the command early), and not
/// empty for a recipient.
pub(crate) fn sendable(address: &str) -> bool {
    !address.is_empty() && !address.chars().any(|c| c.is_control() || c == '<' || c == '>')
}

/// `MAIL FROM:<...> params\r\n`.
pub(crate) fn mail_from(message: &Message<'_>, ext: &Extensions) -> String {
    let mut cmd = format!("MAIL FROM:<{}>", message.reverse_path.unwrap_or(""));
    if ext.size.is_some() {
        cmd.push_str(&format!(" SIZE={}", message.body.len()));
    }
    if message.eight_bit && ext.eight_bit_mime {
        cmd.push_str(" BODY=8BITMIME");
    }
    if message.smtputf8 && ext.smtputf8 {
        cmd.push_str(" SMTPUTF8");
    }
    if ext.dsn {
        match message.ret {
            Some(Ret::Full) => cmd.push_str(" RET=FULL"),
            Some(Ret::Headers) => cmd.push_str(" RET=HDRS"),
            None => {}
        }
        if let Some(envid) = message.envid {
            cmd.push_str(" ENVID=");
            cmd.push_str(&xtext(envid));
        }
    }
    cmd.push_str("\r\n");
    cmd
}

/// `RCPT TO:<...> params\r\n`. `NOTIFY` only when it differs from what
/// the server assumes without it (failures and delays).
pub(crate) fn rcpt_to(rcpt: &Recipient, ext: &Extensions) -> String {
    let mut cmd = format!("RCPT TO:<{}>", rcpt.address);
    if ext.dsn {
        if rcpt.notify != Notify::default() {
            cmd.push_str(" NOTIFY=");
            cmd.push_str(&notify(rcpt.notify));
        }
        if let Some(orcpt) = &rcpt.orcpt {
            let (kind, addr) = orcpt.split_once(';').unwrap_or(("rfc822", orcpt));
            cmd.push_str(&format!(" ORCPT={kind};{}", xtext(addr)));
        }
    }
    cmd.push_str("\r\n");
    cmd
}

fn notify(n: Notify) -> String {
    let words: Vec<&str> = [(n.success, "SUCCESS"), (n.failure, "FAILURE"), (n.delay, "DELAY")]
        .into_iter()
        .filter_map(|(on, word)| on.then_some(word))
        .collect();
    if words.is_empty() { "NEVER".to_owned() } else { words.join(",") }
}

/// RFC 3461 4: `+`, `=`, and bytes outside `!`..`~` as `+HH`.
pub(crate) fn xtext(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message<'a>(body: &'a [u8], rcpts: &'a [Recipient]) -> Message<'a> {
        Message {
            reverse_path: Some("a@ours.example"),
            recipients: rcpts,
            body,
            envid: Some("id+1=x"),
            ret: Some(Ret::Headers),
            smtputf8: false,
            eight_bit: true,
        }
    }

    fn rcpt(notify: Notify, orcpt: Option<&str>) -> Recipient {
        Recipient { address: "b@theirs.example".into(), notify, orcpt: orcpt.map(Into::into) }
    }

    #[test]
    fn xtext_encodes() {
        assert_eq!(xtext("a+b=c d"), "a+2Bb+3Dc+20d");
        assert_eq!(xtext("ü"), "+C3+BC");
    }

    #[test]
    fn parameters_follow_the_extensions() {
        let none = Extensions::default();
        let all = Extensions {
            starttls: true,
            dsn: true,
            smtputf8: true,
            eight_bit_mime: true,
            size: Some(0),
            auth: 0,
        };
        let m = message(b"12345", &[]);
        assert_eq!(mail_from(&m, &none), "MAIL FROM:<a@ours.example>\r\n");
        assert_eq!(
            mail_from(&m, &all),
            "MAIL FROM:<a@ours.example> SIZE=5 BODY=8BITMIME RET=HDRS ENVID=id+2B1+3Dx\r\n"
        );
        let bounce = Message { reverse_path: None, envid: None, ret: None, ..m };
        assert_eq!(mail_from(&bounce, &all), "MAIL FROM:<> SIZE=5 BODY=8BITMIME\r\n");

        let plain = rcpt(Notify::default(), None);
        assert_eq!(rcpt_to(&plain, &all), "RCPT TO:<b@theirs.example>\r\n");
        let never = Notify { success: false, failure: false, delay: false };
        let r = rcpt(never, Some("rfc822;b+x@theirs.example"));
        assert_eq!(rcpt_to(&r, &none), "RCPT TO:<b@theirs.example>\r\n");
        assert_eq!(
            rcpt_to(&r, &all),
            "RCPT TO:<b@theirs.example> NOTIFY=NEVER ORCPT=rfc822;b+2Bx@theirs.example\r\n"
        );
        let every = Notify { success: true, failure: true, delay: false };
        let r = rcpt(every, Some("b@theirs.example"));
        assert_eq!(
            rcpt_to(&r, &all),
            "RCPT TO:<b@theirs.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@theirs.example\r\n"
        );
    }

    #[test]
    fn what_cannot_go() {
        let ext = |size, smtputf8| Extensions { size, smtputf8, ..Extensions::default() };
        let m = message(b"0123456789", &[]);
        let utf8 = Message { smtputf8: true, ..m };
        let bad_from = Message { reverse_path: Some("a\r\nRCPT TO:<x@y>"), ..m };
        let cases = [
            (m, ext(Some(10), false), None),
            (m, ext(Some(0), false), None),
            (m, ext(None, false), None),
            (m, ext(Some(9), false), Some(TOO_BIG)),
            (utf8, ext(None, false), Some(NO_SMTPUTF8)),
            (utf8, ext(None, true), None),
            (bad_from, ext(None, false), Some(BAD_SENDER)),
        ];
        for (message, ext, want) in cases {
            let got = check("mx.example", &message, &ext).err().map(|u| u.status);
            assert_eq!(got, want, "{ext:?}");
        }
        assert!(sendable("b@theirs.example"));
        assert!(sendable("ü@théirs.example"));
        for bad in ["", "b@x\r\nDATA", "b@x\0", "b@x>"] {
            assert!(!sendable(bad), "{bad:?}");
        }
    }
}

//! CAPABILITY, ID, NAMESPACE, LOGOUT, STARTTLS, LOGIN and AUTHENTICATE
//! PLAIN. Passwords travel in the clear only over TLS or on loopback;
//! every failed login goes through the shared throttle.

use imap_codec::imap_types::auth::AuthMechanism;
use imap_codec::imap_types::core::{Atom, IString, NString, QuotedChar, Tag, Vec1};
use imap_codec::imap_types::extensions::compress::CompressionAlgorithm;
use imap_codec::imap_types::extensions::namespace::Namespace;
use imap_codec::imap_types::response::{Capability, Code, Data, Response, Status};

use crate::backend::{AuthError, MailBackend};
use crate::context::Verdict;
use crate::imap::session::{Done, Gone, Session, Sink, bad, code, no, ok};

impl<B: MailBackend> Session<B> {
    /// Whether a password may be sent on this connection.
    pub(crate) fn plaintext_ok(&self) -> bool {
        self.tls || self.peer.is_loopback()
    }

    /// What this session can do now.
    pub(crate) fn capabilities(&self) -> Vec1<Capability<'static>> {
        let mut caps = vec![Capability::Imap4Rev1];
        // IMAP4rev2 beside IMAP4rev1 (RFC 9051 section 9): a client
        // chooses it with ENABLE IMAP4rev2. imap-types has no variant.
        caps.extend(Atom::try_from("IMAP4rev2").ok().map(Capability::from));
        caps.extend([Capability::LiteralPlus, Capability::SaslIr]);
        if self.user.is_none() {
            if self.shared.tls.is_some() && !self.tls {
                caps.push(Capability::StartTls);
            }
            if self.plaintext_ok() {
                caps.push(Capability::Auth(AuthMechanism::Plain));
            } else {
                caps.push(Capability::LoginDisabled);
            }
        }
        caps.extend([
            Capability::Id,
            Capability::Idle,
            Capability::Namespace,
            Capability::UidPlus,
            Capability::Move,
            Capability::Unselect,
            Capability::Binary,
            Capability::Enable,
            Capability::CondStore,
            Capability::QResync,
            Capability::StatusSize,
        ]);
        for name in [
            "SPECIAL-USE",
            "MULTIAPPEND",
            "CATENATE",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "STATUS=SIZE",
        ] {
            if let Ok(atom) = Atom::try_from(name) {
                caps.push(Capability::from(atom));
            }
        }
        caps.extend(crate::imap::quota::capabilities());
        if self.user.is_some() && !self.compressed {
            caps.push(Capability::Compress { algorithm: CompressionAlgorithm::Deflate });
        }
        caps.extend(crate::imap::search::capabilities());
        Vec1::try_from(caps).unwrap_or_else(|_| Vec1::from(Capability::Imap4Rev1))
    }

    pub(crate) async fn capability<O: Sink>(
        &mut self,
        tag: Tag<'static>,
        out: &mut O,
    ) -> Result<Done, Gone> {
        out.send(Response::Data(Data::Capability(self.capabilities()))).await?;
        Ok(Done::now(ok(&tag, None, "CAPABILITY completed")))
    }

    pub(crate) async fn id<O: Sink>(
        &mut self,
        tag: Tag<'static>,
        out: &mut O,
    ) -> Result<Done, Gone> {
        let pair =
            |k: &'static str, v: &'static str| -> Option<(IString<'static>, NString<'static>)> {
                Some((IString::try_from(k).ok()?, NString::try_from(v).ok()?))
            };
        let parameters =
            [pair("name", "epost"), pair("vendor", "epost")].into_iter().flatten().collect();
        out.send(Response::Data(Data::Id { parameters: Some(parameters) })).await?;
        Ok(Done::now(ok(&tag, None, "ID completed")))
    }

    pub(crate) async fn namespace<O: Sink>(
        &mut self,
        tag: Tag<'static>,
        out: &mut O,
    ) -> Result<Done, Gone> {
        let personal = IString::try_from("")
            .map(|prefix| vec![Namespace::new(prefix, QuotedChar::try_from('/').ok())])
            .unwrap_or_default();
        let data = Data::Namespace { personal, other: Vec::new(), shared: Vec::new() };
        out.send(Response::Data(data)).await?;
        Ok(Done::now(ok(&tag, None, "NAMESPACE completed")))
    }

    pub(crate) async fn logout<O: Sink>(
        &mut self,
        tag: Tag<'static>,
        out: &mut O,
    ) -> Result<Done, Gone> {
        if let Ok(bye) = Status::bye(None, "logging out") {
            out.send(Response::Status(bye)).await?;
        }
        self.selected = None;
        Ok(Done::Close(ok(&tag, None, "LOGOUT completed")))
    }

    pub(crate) fn starttls(&mut self, tag: Tag<'static>) -> Done {
        if self.tls {
            Done::now(bad(&tag, "TLS is already on"))
        } else if self.shared.tls.is_none() {
            Done::now(no(&tag, None, "TLS is not available"))
        } else {
            Done::StartTls(ok(&tag, None, "begin TLS negotiation now"))
        }
    }

    pub(crate) async fn login(&mut self, tag: Tag<'static>, user: &[u8], password: &[u8]) -> Done {
        if !self.plaintext_ok() {
            return Done::now(no(&tag, Some(code("PRIVACYREQUIRED")), "use STARTTLS first"));
        }
        self.verify(tag, user, password).await
    }

    pub(crate) async fn authenticate(
        &mut self,
        tag: Tag<'static>,
        mechanism: AuthMechanism<'static>,
        initial: Option<Vec<u8>>,
    ) -> Done {
        if mechanism != AuthMechanism::Plain {
            return Done::now(no(&tag, None, "only AUTHENTICATE PLAIN is supported"));
        }
        if !self.plaintext_ok() {
            return Done::now(no(&tag, Some(code("PRIVACYREQUIRED")), "use STARTTLS first"));
        }
        match initial {
            Some(response) => self.auth_plain(tag, Some(response)).await,
            None => Done::AuthPlain(tag),
        }
    }

    /// The client's SASL PLAIN response (`None`: it cancelled).
    pub(crate) async fn auth_plain(
        &mut self,
        tag: Tag<'static>,
        response: Option<Vec<u8>>,
    ) -> Done {
        let Some(response) = response else {
            return Done::now(bad(&tag, "AUTHENTICATE cancelled"));
        };
        let mut fields = response.split(|&b| b == 0);
        let (Some(authz), Some(user), Some(password), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Done::now(bad(&tag, "malformed PLAIN response"));
        };
        if !authz.is_empty() && authz != user {
            return Done::now(no(
                &tag,
                Some(code("AUTHORIZATIONFAILED")),
                "cannot log in as another user",
            ));
        }
        let (user, password) = (user.to_vec(), password.to_vec());
        self.verify(tag, &user, &password).await
    }

    async fn verify(&mut self, tag: Tag<'static>, user: &[u8], password: &[u8]) -> Done {
        let failed = |session: &Self, user: &str| Done::Status {
            status: no(&tag, Some(code("AUTHENTICATIONFAILED")), "invalid credentials"),
            delay: session.shared.throttle.failed(session.peer, user),
        };
        let user = String::from_utf8_lossy(user).into_owned();
        if self.shared.throttle.check(self.peer, &user) == Verdict::Locked {
            return Done::now(no(
                &tag,
                Some(code("UNAVAILABLE")),
                "too many failed logins; try later",
            ));
        }
        let Ok(password) = std::str::from_utf8(password) else {
            return failed(self, &user);
        };
        let address = match self.shared.backend.authenticate(&user, password).await {
            Ok(address) => address,
            Err(AuthError::Invalid) => return failed(self, &user),
            Err(AuthError::Temporary(why)) => {
                return Done::now(no(&tag, Some(code("UNAVAILABLE")), &why.with_causes()));
            }
        };
        match self.shared.backend.account(&address).await {
            Ok(account) => {
                self.shared.throttle.succeeded(self.peer, &user);
                self.user = Some((address, account));
                Done::now(ok(&tag, Some(Code::Capability(self.capabilities())), "logged in"))
            }
            Err(error) => Done::now(no(&tag, Some(code("UNAVAILABLE")), &error.with_causes())),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::imap::session::tests::{run, session};

    #[tokio::test]
    async fn login_and_plain() {
        let (mut s, _) = session();
        let caps = run(&mut s, "a CAPABILITY").await;
        assert!(caps.contains("AUTH=PLAIN") && caps.contains("SPECIAL-USE"), "{caps}");
        assert!(
            run(&mut s, "b LOGIN alice@example.test nope")
                .await
                .starts_with("b NO [AUTHENTICATIONFAILED]")
        );
        // "\0alice@example.test\0alice-pw"
        let reply =
            run(&mut s, "c AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABhbGljZS1wdw==").await;
        assert!(reply.starts_with("c OK [CAPABILITY"), "{reply}");
        assert!(run(&mut s, "d NAMESPACE").await.contains("* NAMESPACE ((\"\" \"/\")) NIL NIL"));
        let id = run(&mut s, "e ID NIL").await;
        assert!(id.starts_with("* ID (\"name\" \"epost\""), "{id}");
        assert!(run(&mut s, "f LOGOUT").await.starts_with("* BYE"));
    }

    #[tokio::test]
    async fn passwords_need_tls_off_loopback() {
        let (mut s, _) = session();
        s.peer = "192.0.2.1".parse().unwrap();
        let caps = run(&mut s, "a CAPABILITY").await;
        assert!(caps.contains("LOGINDISABLED") && !caps.contains("AUTH=PLAIN"), "{caps}");
        let reply = run(&mut s, "b LOGIN alice@example.test alice-pw").await;
        assert!(reply.starts_with("b NO [PRIVACYREQUIRED]"), "{reply}");
        s.tls = true;
        assert!(run(&mut s, "c LOGIN alice@example.test alice-pw").await.starts_with("c OK"));
    }
}

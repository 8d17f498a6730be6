//! The gateway's TLS: a configured certificate chain and key (PEM), or a
//! self-signed certificate made with rcgen on first start and kept in the
//! data directory so clients that pinned it keep trusting it.
//!
//! The self-signed certificate names every name a client may reach the
//! gateway by ([`self_signed_names`]): `localhost`, the loopback
//! addresses, the configured hostname and the addresses it listens on.
//! Clients that check the name against the address they dialled (msmtp,
//! fetchmail, neomutt connecting to 127.0.0.1) then accept it once they
//! trust it. A kept one that lacks a name it should have is made again
//! with the same key (so a pinned key stays good); a configured
//! certificate is never touched.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Why TLS could not be set up. Each keeps its cause, so the chain reads
/// `what: why`.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: pem::Error,
    },
    #[error("{path} has no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} has no usable PEM private key")]
    BadKey {
        path: PathBuf,
        #[source]
        source: pem::Error,
    },
    #[error("cannot write the self-signed certificate to {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot make a self-signed certificate")]
    Generate(#[source] rcgen::Error),
    #[error("the certificate and key do not make a TLS configuration")]
    Config(#[source] rustls::Error),
}

/// Where the certificate comes from.
#[derive(Debug, Clone)]
pub enum TlsSource {
    /// PEM files given by the operator.
    Files { cert: PathBuf, key: PathBuf },
    /// A self-signed certificate for `names` (DNS names and IP
    /// addresses), made once and kept in `dir`; made again when the kept
    /// one lacks one of them.
    SelfSigned { dir: PathBuf, names: Vec<String> },
}

/// The names a self-signed certificate carries: `localhost` and both
/// loopback addresses (a local client may dial any of them), `hostname`,
/// and each address the gateway listens on unless it is the unspecified
/// one (`0.0.0.0`, `::`: it names no address a client dials). In that
/// order, each once.
pub fn self_signed_names(
    hostname: &str,
    listening: impl IntoIterator<Item = IpAddr>,
) -> Vec<String> {
    let fixed = [
        "localhost".to_owned(),
        hostname.to_owned(),
        IpAddr::V4(Ipv4Addr::LOCALHOST).to_string(),
        IpAddr::V6(Ipv6Addr::LOCALHOST).to_string(),
    ];
    let listened = listening.into_iter().filter(|ip| !ip.is_unspecified()).map(|ip| {
        // A v4 address written as v6 (`::ffff:192.0.2.1`) is dialled as v4.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        ip.to_string()
    });
    let mut names: Vec<String> = Vec::new();
    for name in fixed.into_iter().chain(listened) {
        if !name.is_empty() && !names.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
            names.push(name);
        }
    }
    names
}

/// Builds the acceptor every protocol uses for implicit TLS and STARTTLS.
pub fn acceptor(source: &TlsSource) -> Result<TlsAcceptor, TlsError> {
    let (cert, key) = match source {
        TlsSource::Files { cert, key } => (cert.clone(), key.clone()),
        TlsSource::SelfSigned { dir, names } => self_signed(dir, names)?,
    };
    let chain = CertificateDer::pem_file_iter(&cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::Read { path: cert.clone(), source })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { path: cert });
    }
    let key = PrivateKeyDer::from_pem_file(&key)
        .map_err(|source| TlsError::BadKey { path: key.clone(), source })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(TlsError::Config)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The kept self-signed pair in `dir`: made now if missing, made again
/// (with the kept key, when it reads) if the certificate lacks a name.
fn self_signed(dir: &Path, names: &[String]) -> Result<(PathBuf, PathBuf), TlsError> {
    let cert = dir.join("gateway-cert.pem");
    let key = dir.join("gateway-key.pem");
    let kept_key = if cert.exists() && key.exists() {
        let missing = missing_names(&cert, names);
        if missing.is_empty() {
            return Ok((cert, key));
        }
        tracing::info!(
            path = %cert.display(),
            missing = %missing.join(", "),
            "the self-signed certificate lacks names; making it again with the same key"
        );
        std::fs::read_to_string(&key).ok().and_then(|pem| rcgen::KeyPair::from_pem(&pem).ok())
    } else {
        None
    };
    let signing_key = match kept_key {
        Some(kept) => kept,
        None => rcgen::KeyPair::generate().map_err(TlsError::Generate)?,
    };
    let made = rcgen::CertificateParams::new(names.to_vec())
        .and_then(|params| params.self_signed(&signing_key))
        .map_err(TlsError::Generate)?;
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write { path: dir.into(), source })?;
    write_private(&key, signing_key.serialize_pem().as_bytes())?;
    write_private(&cert, made.pem().as_bytes())?;
    Ok((cert, key))
}

/// Which of `names` the self-signed certificate in `path` is not valid
/// for, checked as a client would: rustls's verifier, trusting the
/// certificate itself. Only a name mismatch counts; anything else (an
/// unreadable file, a certificate that is not self-signed after all) is
/// left to the acceptor to report or to the operator, never remade.
fn missing_names(path: &Path, names: &[String]) -> Vec<String> {
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{ServerName, UnixTime};
    let Ok(Some(Ok(cert))) = CertificateDer::pem_file_iter(path).map(|mut certs| certs.next())
    else {
        return Vec::new();
    };
    let mut roots = rustls::RootCertStore::empty();
    if roots.add(cert.clone()).is_err() {
        return Vec::new();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let Ok(verifier) =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
    else {
        return Vec::new();
    };
    let now = UnixTime::now();
    names
        .iter()
        .filter(|name| {
            let Ok(server) = ServerName::try_from(name.as_str()) else { return false };
            matches!(
                verifier.verify_server_cert(&cert, &[], &server, &[], now),
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForName
                        | rustls::CertificateError::NotValidForNameContext { .. }
                ))
            )
        })
        .cloned()
        .collect()
}

/// Writes a file readable by its owner only, atomically (temp + rename).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let write = || -> io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|source| TlsError::Write { path: path.into(), source })
}

/// A TLS client that trusts only the self-signed certificate kept in
/// `dir` (and checks the name it is given against it).
#[cfg(test)]
pub(crate) fn client_trusting(dir: &Path) -> rustls::ClientConfig {
    let cert = CertificateDer::from_pem_file(dir.join("gateway-cert.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Completes a handshake with `acceptor` over an in-memory pipe, as a
    /// client trusting only `dir`'s certificate and expecting `name`.
    async fn handshake(acceptor: TlsAcceptor, dir: &Path, name: &str) -> Result<(), io::Error> {
        use rustls::pki_types::ServerName;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client_trusting(dir)));
        let (client, server) = tokio::io::duplex(64 * 1024);
        let served = tokio::spawn(async move {
            let mut tls = acceptor.accept(server).await?;
            tls.write_all(b"hello").await?;
            tls.shutdown().await
        });
        let name = ServerName::try_from(name.to_owned()).unwrap();
        let mut tls = connector.connect(name, client).await?;
        let mut heard = Vec::new();
        tls.read_to_end(&mut heard).await?;
        assert_eq!(heard, b"hello");
        served.await.unwrap()
    }

    #[test]
    fn the_names_are_localhost_loopback_hostname_and_specific_listen_addresses() {
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        let cases: [(&str, Vec<IpAddr>, Vec<&str>); 4] = [
            ("localhost", vec![ip("127.0.0.1")], vec!["localhost", "127.0.0.1", "::1"]),
            (
                "mx.example.org",
                vec![ip("0.0.0.0"), ip("::"), ip("192.0.2.7"), ip("192.0.2.7")],
                vec!["localhost", "mx.example.org", "127.0.0.1", "::1", "192.0.2.7"],
            ),
            (
                "MX.example.org",
                vec![ip("::ffff:198.51.100.1"), ip("2001:db8::1")],
                vec![
                    "localhost",
                    "MX.example.org",
                    "127.0.0.1",
                    "::1",
                    "198.51.100.1",
                    "2001:db8::1",
                ],
            ),
            ("LOCALHOST", vec![], vec!["localhost", "127.0.0.1", "::1"]),
        ];
        for (hostname, listening, want) in cases {
            assert_eq!(self_signed_names(hostname, listening), want, "{hostname}");
        }
    }

    #[tokio::test]
    async fn a_client_dialling_loopback_by_address_verifies_the_self_signed_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let names = self_signed_names("mx.example.org", []);
        let source = TlsSource::SelfSigned { dir: dir.path().into(), names };
        for name in ["127.0.0.1", "::1", "localhost", "mx.example.org"] {
            handshake(acceptor(&source).unwrap(), dir.path(), name).await.unwrap();
        }
        let wrong = handshake(acceptor(&source).unwrap(), dir.path(), "other.example.org").await;
        assert!(wrong.is_err(), "a name it does not carry is refused");
    }

    #[tokio::test]
    async fn a_kept_certificate_lacking_a_name_is_made_again_with_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let old = TlsSource::SelfSigned { dir: dir.path().into(), names: vec!["localhost".into()] };
        acceptor(&old).unwrap();
        let key = std::fs::read(dir.path().join("gateway-key.pem")).unwrap();
        let cert = std::fs::read(dir.path().join("gateway-cert.pem")).unwrap();
        assert!(handshake(acceptor(&old).unwrap(), dir.path(), "127.0.0.1").await.is_err());
        let new = TlsSource::SelfSigned {
            dir: dir.path().into(),
            names: self_signed_names("localhost", []),
        };
        handshake(acceptor(&new).unwrap(), dir.path(), "127.0.0.1").await.unwrap();
        assert_ne!(std::fs::read(dir.path().join("gateway-cert.pem")).unwrap(), cert);
        assert_eq!(std::fs::read(dir.path().join("gateway-key.pem")).unwrap(), key);
        // Once it has every name, it is kept as it is.
        let remade = std::fs::read(dir.path().join("gateway-cert.pem")).unwrap();
        acceptor(&new).unwrap();
        assert_eq!(std::fs::read(dir.path().join("gateway-cert.pem")).unwrap(), remade);
        // Fewer names than it has is no reason to make it again either.
        acceptor(&old).unwrap();
        assert_eq!(std::fs::read(dir.path().join("gateway-cert.pem")).unwrap(), remade);
    }

    #[test]
    fn configured_files_are_never_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let made = TlsSource::SelfSigned { dir: dir.path().into(), names: vec!["a.test".into()] };
        acceptor(&made).unwrap();
        let (cert, key) = (dir.path().join("gateway-cert.pem"), dir.path().join("gateway-key.pem"));
        let before = std::fs::read(&cert).unwrap();
        // The same files named by the operator: used as they are, though
        // they lack 127.0.0.1.
        acceptor(&TlsSource::Files { cert: cert.clone(), key }).unwrap();
        assert_eq!(std::fs::read(&cert).unwrap(), before);
    }

    #[test]
    fn a_self_signed_certificate_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let source =
            TlsSource::SelfSigned { dir: dir.path().into(), names: vec!["localhost".into()] };
        acceptor(&source).unwrap();
        let first = std::fs::read(dir.path().join("gateway-cert.pem")).unwrap();
        acceptor(&source).unwrap();
        assert_eq!(std::fs::read(dir.path().join("gateway-cert.pem")).unwrap(), first);
    }

    #[test]
    fn a_key_file_without_a_key_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let source =
            TlsSource::SelfSigned { dir: dir.path().into(), names: vec!["localhost".into()] };
        acceptor(&source).unwrap();
        std::fs::write(dir.path().join("gateway-key.pem"), "not a key").unwrap();
        let err = acceptor(&source).err().expect("refused");
        assert!(matches!(err, TlsError::BadKey { .. }), "{err}");
    }
}

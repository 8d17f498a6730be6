//! The gateway's TLS: a configured certificate chain and key (PEM), or a
//! self-signed certificate made with rcgen on first start and kept in the
//! data directory so clients that pinned it keep trusting it.

use std::io;
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
    /// A self-signed certificate for `names`, made once and kept in `dir`.
    SelfSigned { dir: PathBuf, names: Vec<String> },
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

/// The kept self-signed pair in `dir`, made now if missing.
fn self_signed(dir: &Path, names: &[String]) -> Result<(PathBuf, PathBuf), TlsError> {
    let cert = dir.join("gateway-cert.pem");
    let key = dir.join("gateway-key.pem");
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let made = rcgen::generate_simple_self_signed(names.to_vec()).map_err(TlsError::Generate)?;
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Write { path: dir.into(), source })?;
    write_private(&key, made.signing_key.serialize_pem().as_bytes())?;
    write_private(&cert, made.cert.pem().as_bytes())?;
    Ok((cert, key))
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

#[cfg(test)]
mod tests {
    use super::*;

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

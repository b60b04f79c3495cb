//! TLS certificates from PEM files, for the admin listener and the DNS
//! listeners (DoT, DoH): read once, checked as a pair, and for the DNS
//! listeners re-read when the files change on disk (certificates are
//! renewed every few weeks) or on SIGHUP, without dropping a connection.
//!
//! A reload builds a new [`CertifiedKey`] and stores it in an `ArcSwap`
//! that the handshake of each new connection loads ([`Certificates`], a
//! rustls `ResolvesServerCert`): connections already established keep the
//! key they were made with, new ones get the new one, and no lock is taken
//! on the handshake path. A pair that cannot be read, or whose key does not
//! match its certificate (a half-written renewal), is refused with one log
//! line and the previous pair keeps serving.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tracing::{info, warn};

/// Why a certificate and key pair cannot be used; names the config keys
/// (`section.tls_certificate`, `section.tls_key`) and the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file cannot be read or is not PEM.
    #[error("{section}.tls_certificate {}: {source}", file.display())]
    Certificate {
        /// `admin` or `server`.
        section: &'static str,
        /// The file.
        file: PathBuf,
        /// What is wrong.
        source: rustls_pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("{section}.tls_certificate {}: no CERTIFICATE in the file", file.display())]
    NoCertificate {
        /// `admin` or `server`.
        section: &'static str,
        /// The file.
        file: PathBuf,
    },
    /// The key file cannot be read or holds no private key.
    #[error("{section}.tls_key {}: {source}", file.display())]
    Key {
        /// `admin` or `server`.
        section: &'static str,
        /// The file.
        file: PathBuf,
        /// What is wrong.
        source: rustls_pki_types::pem::Error,
    },
    /// rustls refuses the pair (a key that does not match the
    /// certificate, an unsupported algorithm).
    #[error("{section}.tls_certificate, {section}.tls_key: {source}")]
    Rustls {
        /// `admin` or `server`.
        section: &'static str,
        /// What rustls says.
        source: rustls::Error,
    },
}

/// The crypto provider of every TLS side of Rempart: ring, as rustls is
/// built here.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Read the certificate chain (server certificate first) and its private
/// key from PEM files, checked to belong together. `section` names the
/// config keys in errors.
pub fn load(
    section: &'static str,
    certificate: &Path,
    key: &Path,
) -> Result<CertifiedKey, TlsError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(certificate)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::Certificate {
            section,
            file: certificate.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            section,
            file: certificate.to_owned(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Key {
        section,
        file: key.to_owned(),
        source,
    })?;
    let rustls = |source| TlsError::Rustls { section, source };
    let certified = CertifiedKey::from_der(chain, key, &provider()).map_err(rustls)?;
    Ok(certified)
}

/// A rustls server configuration serving the certificate `resolver`
/// gives, with the ring provider, its safe default versions (TLS 1.2 and
/// 1.3) and cipher suites, no client certificate, and `alpn`.
pub fn server_config(
    resolver: Arc<dyn ResolvesServerCert>,
    alpn: &[&[u8]],
) -> Result<rustls::ServerConfig, rustls::Error> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// The DNS listeners' certificate: the pair in force, swapped whole by a
/// reload.
#[derive(Debug)]
pub struct Certificates {
    certificate: PathBuf,
    key: PathBuf,
    current: ArcSwap<CertifiedKey>,
    /// When and how big the files were at the last read, to see a change.
    seen: Mutex<[Option<(SystemTime, u64)>; 2]>,
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl Certificates {
    /// The pair in `certificate` and `key` (`server.tls_certificate`,
    /// `server.tls_key`), read now.
    pub fn load(certificate: &Path, key: &Path) -> Result<Arc<Certificates>, TlsError> {
        let seen = [stamp(certificate), stamp(key)];
        let pair = load("server", certificate, key)?;
        Ok(Arc::new(Certificates {
            certificate: certificate.to_owned(),
            key: key.to_owned(),
            current: ArcSwap::from_pointee(pair),
            seen: Mutex::new(seen),
        }))
    }

    /// Read the files again (SIGHUP): the new pair serves new connections,
    /// or, if it cannot be used, the old one stays, with one warning.
    pub fn reload(&self) -> Result<(), TlsError> {
        let seen = [stamp(&self.certificate), stamp(&self.key)];
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = seen;
        match load("server", &self.certificate, &self.key) {
            Ok(pair) => {
                self.current.store(Arc::new(pair));
                info!(certificate = %self.certificate.display(), "TLS certificate loaded");
                Ok(())
            }
            Err(error) => {
                warn!(%error, "TLS certificate not reloaded: the previous one keeps serving");
                Err(error)
            }
        }
    }

    /// Reload if either file changed (time or size) since the last read;
    /// true if a reload was tried.
    pub fn reload_if_changed(&self) -> bool {
        let now = [stamp(&self.certificate), stamp(&self.key)];
        if *self.seen.lock().unwrap_or_else(|e| e.into_inner()) == now {
            return false;
        }
        let _ = self.reload();
        true
    }

    /// The chain in force (the server certificate first).
    pub fn chain(&self) -> Vec<rustls_pki_types::CertificateDer<'static>> {
        self.current.load().cert.clone()
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

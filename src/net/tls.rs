//! rustls configuration: TLS 1.3 only, one self-signed Ed25519 certificate
//! per operator made from its identity key, and verifiers that pin every peer
//! to the identity key in the cluster definition.
//!
//! There is no certificate authority: a certificate is only a container for
//! the operator's identity key. A connection is accepted only if the peer's
//! certificate carries the pinned key and the peer proves possession of it
//! in the TLS 1.3 handshake (CertificateVerify). Verification is never
//! disabled, in tests neither.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use zeroize::Zeroizing;

use crate::crypto::identity::{IdentityKey, IdentityPublicKey};

/// The ALPN protocol id of the mesh (ceremonies, `dvkg check`); the version
/// is part of it. `dvkg ping` negotiates its own (`net::ping::PING_ALPN`).
pub const ALPN: &[u8] = b"dvkg/2";

/// The name every operator's certificate is issued to (not checked: peers
/// are pinned by key, not by name).
pub const CERTIFICATE_NAME: &str = "dvkg-operator";

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The certificate could not be made.
    #[error("failed to make the operator certificate: {0}")]
    Certificate(String),
    /// rustls refused the configuration.
    #[error("failed to configure TLS: {0}")]
    Config(#[from] Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The operator's certificate and private key, from its identity key.
///
/// # Errors
///
/// [`TlsError::Certificate`] if rcgen refuses the key (a bug).
pub fn certificate(
    identity: &IdentityKey,
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), TlsError> {
    // PKCS#8 v1 wrapping of an Ed25519 seed (RFC 8410 §7): a fixed prefix,
    // then the 32-byte seed.
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let seed = identity.to_seed();
    let mut der = Zeroizing::new(Vec::with_capacity(48));
    der.extend_from_slice(&PREFIX);
    der.extend_from_slice(seed.expose_secret());
    let pkcs8 = PrivatePkcs8KeyDer::from(der.to_vec());
    let key_pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_ED25519)
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    let params = rcgen::CertificateParams::new(vec![CERTIFICATE_NAME.to_owned()])
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    let cert = params
        .self_signed(&key_pair)
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    Ok((cert.der().clone(), PrivateKeyDer::Pkcs8(pkcs8)))
}

/// The Ed25519 key in a certificate's SubjectPublicKeyInfo (parsed, not
/// searched for, so a key hidden elsewhere in the certificate is ignored).
pub fn certificate_key(cert: &CertificateDer<'_>) -> Result<IdentityPublicKey, Error> {
    let bad = || Error::InvalidCertificate(CertificateError::BadEncoding);
    let (rest, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).map_err(|_| bad())?;
    if !rest.is_empty() {
        return Err(bad());
    }
    let spki = &parsed.tbs_certificate.subject_pki;
    if spki.algorithm.algorithm != x509_parser::oid_registry::OID_SIG_ED25519 {
        return Err(Error::InvalidCertificate(
            CertificateError::ApplicationVerificationFailure,
        ));
    }
    let key: [u8; 32] = spki
        .subject_public_key
        .data
        .as_ref()
        .try_into()
        .map_err(|_| bad())?;
    Ok(IdentityPublicKey(crate::wire::Bytes(key)))
}

fn algorithms() -> WebPkiSupportedAlgorithms {
    provider().signature_verification_algorithms
}

fn ed25519_only(scheme: SignatureScheme) -> Result<(), Error> {
    if scheme == SignatureScheme::ED25519 {
        Ok(())
    } else {
        Err(Error::PeerMisbehaved(
            rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
        ))
    }
}

/// Accepts a server only if its certificate carries one pinned key.
#[derive(Debug)]
struct PinnedServer {
    expected: IdentityPublicKey,
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if certificate_key(end_entity)? != self.expected {
            return Err(Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        ed25519_only(dss.scheme)?;
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// Accepts a client only if its certificate carries a key of the roster.
#[derive(Debug)]
struct RosterClients {
    roster: Vec<IdentityPublicKey>,
}

impl ClientCertVerifier for RosterClients {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let key = certificate_key(end_entity)?;
        if !self.roster.contains(&key) {
            return Err(Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ));
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        ed25519_only(dss.scheme)?;
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// The server side: TLS 1.3, ALPN `dvkg/2`, client certificates required
/// and pinned to the roster.
///
/// # Errors
///
/// [`TlsError`] if rustls refuses the configuration.
pub fn server_config(
    identity: &IdentityKey,
    roster: &[IdentityPublicKey],
) -> Result<rustls::ServerConfig, TlsError> {
    let (cert, key) = certificate(identity)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(Arc::new(RosterClients {
            roster: roster.to_vec(),
        }))
        .with_single_cert(vec![cert], key)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// The client side for dialling one peer: TLS 1.3, ALPN `dvkg/1`, the
/// server pinned to `peer`, and this operator's certificate offered.
///
/// # Errors
///
/// [`TlsError`] if rustls refuses the configuration.
pub fn client_config(
    identity: &IdentityKey,
    peer: IdentityPublicKey,
) -> Result<rustls::ClientConfig, TlsError> {
    let (cert, key) = certificate(identity)?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        // A custom verifier, not a disabled one: it pins the peer's key.
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedServer { expected: peer }))
        .with_client_auth_cert(vec![cert], key)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn certificate_carries_the_identity_key() {
        let identity = IdentityKey::generate(&mut StdRng::seed_from_u64(1));
        let (cert, _) = certificate(&identity).unwrap();
        assert_eq!(certificate_key(&cert).unwrap(), identity.public());
        assert!(server_config(&identity, &[identity.public()]).is_ok());
        assert!(client_config(&identity, identity.public()).is_ok());
    }
}
